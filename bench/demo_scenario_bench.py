"""How long does the demo scenario's crowd take? Wall time until every organization is decided.

Runs the built-in ``demo`` scenario in a real emulator (loopback HTTP) driven by the scripted
client (emulator/crowd/scripted.py: plain majority, local photo folder), once at the default
speed and once at a high speed, and prints the time and the score against the ground truth.
The pipeline's own overhead (tick period, cursor lag) comes on top of the default-speed figure.

    python bench/demo_scenario_bench.py [--speeds 60,3000] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulator.app import start_emulator
from emulator.crowd.scenario import DEFAULT_SPEED, Scenario, load_scenario_file
from emulator.crowd.scripted import ScriptedClient
from emulator.crowd.truth import score

TOKEN = "bench-token"


async def run_once(speed: float, seed: int, poll_seconds: float) -> None:
    scenario = load_scenario_file("demo")
    assert isinstance(scenario, Scenario)  # the built-in demo is a pedestrian scenario
    with tempfile.TemporaryDirectory(prefix="crowd-bench-") as tmp:
        started = time.monotonic()
        async with start_emulator(Path(tmp) / "emu.sqlite", token=TOKEN, seed=seed, speed=speed,
                                  scenario="demo", step_seconds=0.1) as emu, aiohttp.ClientSession() as http:
            ready = time.monotonic() - started
            assert emu.setup_result is not None  # start_emulator(scenario=...) sets it up before it yields
            client = ScriptedClient(emu.url, token=TOKEN, setup_result=emu.setup_result, scenario=scenario,
                                    folder=Path(tmp) / "photos", http=http, poll_seconds=poll_seconds)
            result = await client.run(expected=len(scenario.organizations), timeout=600)
            async with http.get(emu.url + "/_emulator/truth", headers={"Authorization": f"OAuth {TOKEN}"}) as r:
                truth = await r.json()
        s = score(truth, result.decisions, kept_photos=result.kept_photos, bonus_fields=result.bonuses)
        outcomes = {k: list(result.decisions.values()).count(k) for k in ("accept", "reject", "no_org")}
        print(f"speed {speed:g}: emulator+setup {ready:.2f} s, all {len(result.decisions)} organizations decided "
              f"after {result.seconds:.1f} s wall (poll {poll_seconds} s)")
        print(f"  decisions {outcomes}; tasks created {result.tasks}; photos {len(truth['photos'])}; "
              f"checker answers {sum(len(a['tasks']) for a in truth['answers'].values())}")
        print(f"  score: exact {s['exact']}/{s['decided']}, precision of accepted {s['precision_accepted']}, "
              f"recall {s['recall_accepted']}, cheats caught {s['cheats_caught']}/{s['cheats']}, "
              f"bad photos kept out {s['bad_photos_kept_out']}/{s['bad_photos']}, "
              f"bonus fields right {s.get('bonus_fields_right')}/{s.get('bonus_fields_paid')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speeds", default=f"{DEFAULT_SPEED:g},3000", help="comma list (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--poll", type=float, default=0.5, help="scripted client's poll period, seconds")
    args = parser.parse_args()
    for speed in (float(s) for s in args.speeds.split(",")):
        asyncio.run(run_once(speed, args.seed, args.poll))


if __name__ == "__main__":
    main()
