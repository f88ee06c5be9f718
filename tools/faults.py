"""Fault run: the same scenario clean and under injected API faults; same outcome, bounded slowdown.

    python -m tools.faults                          # default: 20% errors, latency past the timeout, dropped writes
    python -m tools.faults --pipeline find_items    # the same for the second pipeline

Two runs of one scenario with one seed, each against its own emulator process
and an uninterrupted daemon. The second emulator injects (docs/emulator.md):

- 20% of API requests answered with an error: 429 without and with
  Retry-After, 500 with a JSON body and with an empty one, 503;
- latency past the client's timeout ([Toloka] timeout_seconds is set to 2 s in
  both runs; 3% of requests wait 3 s);
- writes applied and then answered by a dropped connection (5% of POST/PUT/PATCH).

The faults are on until every pedestrian assignment is decided, then off while
the run is wound up (crowd paused, last --once tick), so the read-back is clean.
The run is then checked like the soak's (tools/outcome.py) and its outcome per
organization compared with the clean run. The last line is the verdict with
the slowdown factor (time to decide everything, faulty over clean):

    FAULTS PASS slowdown=1.4x clean=52s faulty=73s injected=... duplicates=0 missing=0 ...
"""

from __future__ import annotations

import argparse
import configparser
import json
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from pipelines import load_settings
from tools.flows import FLOWS, Flow
from tools.harness import TOKEN, emulator, fast_config, set_faults, store_token
from tools.outcome import compare
from tools.soak import run_to_the_end

FAULTS: dict[str, Any] = {
    "rate_429": 0.04, "rate_429_retry_after": 0.04, "retry_after_seconds": 1,
    "rate_500": 0.04, "rate_500_empty": 0.04, "rate_503": 0.04,
    "latency_seconds": 3.0, "latency_rate": 0.03,
    "drop_after_write_rate": 0.05,
}
CLIENT_TIMEOUT_S = "2"


def _short_timeout(config: Path) -> None:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(config, encoding="utf-8")
    cfg["Toloka"]["timeout_seconds"] = CLIENT_TIMEOUT_S
    with config.open("w", encoding="utf-8") as handle:
        cfg.write(handle)


def _injected(url: str) -> Any:
    request = urllib.request.Request(f"{url}/_emulator/state", headers={"Authorization": f"OAuth {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        state = json.loads(response.read())
    return state.get("faults", {}).get("injected", state.get("faults"))


def one_run(folder: Path, flow: Flow, seed: int, speed: float, faults: dict[str, Any] | None,
            timeout: float) -> tuple[float, Any]:
    """Run to the end in ``folder``; (seconds until everything was decided, injected-fault counts)."""
    folder.mkdir(parents=True, exist_ok=True)
    with emulator(folder, seed=seed, speed=speed, scenario=flow.scenario) as url:
        config = fast_config(folder)
        _short_timeout(config)
        settings = load_settings(config)
        store_token(folder, settings.secrets.toloka_token)
        if faults:
            set_faults(url, faults)
        elapsed = run_to_the_end(folder, url, flow, timeout,
                                 before_wind_up=lambda: set_faults(url, {}) if faults else None)
        injected = _injected(url)
    return elapsed, injected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=5, help="the crowd's and the fault injector's seed")
    parser.add_argument("--pipeline", choices=sorted(FLOWS), default="pedestrian", help="the pipeline to run")
    parser.add_argument("--speed", type=float, default=60.0, help="emulator speed")
    parser.add_argument("--folder", type=Path, help="working folder (default: a new temp folder, kept)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per run before giving up")
    parser.add_argument("--error-rate", type=float, default=0.20, help="share of API requests answered with an error")
    parser.add_argument("--drop-rate", type=float, default=0.05, help="share of writes applied, then dropped")
    args = parser.parse_args(argv)
    share = args.error_rate / 5  # 429, 429 with Retry-After, 500, 500 with an empty body, 503
    faults = {**FAULTS, "rate_429": share, "rate_429_retry_after": share, "rate_500": share, "rate_500_empty": share,
              "rate_503": share, "drop_after_write_rate": args.drop_rate}
    folder = args.folder or Path(tempfile.mkdtemp(prefix="faults-"))
    print(f"faults: working in {folder}", flush=True)
    flow = FLOWS[args.pipeline]
    clean_s, _ = one_run(folder / "clean", flow, args.seed, args.speed, None, args.timeout)
    faulty_s, injected = one_run(folder / "faulty", flow, args.seed, args.speed, faults, args.timeout)
    found = flow.check_run(folder / "faulty")
    differ = compare(flow.outcome(folder / "faulty"), flow.outcome(folder / "clean"))
    out = (folder / "faulty" / "pipeline.out").read_text(errors="replace")
    tracebacks = out.count("Traceback")
    passed = found.ok and not differ and tracebacks == 0
    (folder / "faults-details.json").write_text(json.dumps(
        {"problems": found.problems[:50], "outcome_differs": differ, "injected": injected}, indent=1))
    print(f"injected: {json.dumps(injected, sort_keys=True)}")
    print(f"FAULTS {'PASS' if passed else 'FAIL'} pipeline={flow.pipeline} slowdown={faulty_s / clean_s:.2f}x "
          f"clean={clean_s:.0f}s faulty={faulty_s:.0f}s duplicates={found.duplicates} missing={found.missing} "
          f"wrong={found.wrong} broken_links={found.broken_links} late_answers_dropped={found.late_answers} "
          f"outcome_differs={len(differ)} tracebacks={tracebacks}", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
