"""The crowdsourcing pipeline daemon: ``python pipeline.py [--config toloka.ini] [--once] [--demo [NAME]]``.

``python pipeline.py COMMAND ...`` runs one of the one-off commands of the
``commands`` package (``--help`` lists them), e.g. ``unrestrict WORKER``.

Left running on a server, it turns a crowd's work on Toloka into checked
results, a tick every ``[Pipeline] period_seconds``, for the pipeline that
``[Pipeline] definition`` names (pedestrian or find_items). See README.md.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The daemon's own options, or ``COMMAND ...`` for one of :func:`commands.all_commands`."""
    import commands

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in commands.names() and argv[0] in commands.all_commands():
        command = commands.all_commands()[argv[0]]
        sub = argparse.ArgumentParser(prog=f"pipeline.py {command.name}", description=command.help)
        commands.config_argument(sub)
        command.add_arguments(sub)
        args = sub.parse_args(argv[1:])
        args.command = command.name
        return args
    parser = _DaemonParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    commands.config_argument(parser)
    parser.add_argument("--once", action="store_true", help="run one tick, then exit")
    parser.add_argument("--fresh", action="store_true",
                        help="start without a checkpoint although earlier runs left rows in logs/ or the "
                             "results (cursors from the beginning of the pools; existing rows are kept, "
                             "not written twice)")
    parser.add_argument("--demo", nargs="?", const="pedestrian", choices=("pedestrian", "find_items"),
                        help="run a full rehearsal of a pipeline (default pedestrian) against the local emulator")
    parser.add_argument("--demo-dir", type=Path, default=Path("demo-run"), help="working folder of --demo")
    parser.add_argument("--seed", type=int, default=1, help="random seed of --demo's simulated crowd")
    parser.add_argument("--aggregation", choices=("MajorityVote", "DawidSkene", "Wawa"), default=None,
                        help="run --demo with a fixed overlap and this aggregation method (default: the "
                             "dynamic policy with learned worker quality, see docs/decisions.md)")
    args = parser.parse_args(argv)
    args.command = "run"
    return args


class _DaemonParser(argparse.ArgumentParser):
    """The daemon's parser; its help lists the commands, whose modules are imported only for that."""

    def format_help(self) -> str:
        import commands

        listing = "\n".join(f"  {name:<12} {c.help}" for name, c in commands.all_commands().items())
        self.epilog = f"commands (python pipeline.py COMMAND --help):\n{listing}"
        return super().format_help()


def main(argv: list[str] | None = None) -> int:
    """Run the daemon or a command; a reader that stops reading (``| head``) ends it quietly.

    That is the exit of a process killed by SIGPIPE, as ``cat`` or ``grep`` end in a pipe
    (code 141), without a traceback. A command cut short this way is interrupted as a kill
    would interrupt it, which every command survives.
    """
    try:
        code = _main(argv)
        sys.stdout.flush()  # the last buffered lines meet a closed pipe here, not at interpreter exit
        return code
    except BrokenPipeError:
        if not _reader_gone():
            raise  # a broken connection of some other kind: not ours to hide
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's own flush at exit goes nowhere
        return 128 + signal.SIGPIPE


def _reader_gone() -> bool:
    """True when nothing reads this process's standard output any more (its pipe's reader exited)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError):  # no descriptor behind stdout, or no poll on this platform
        return False


def _main(argv: list[str] | None) -> int:
    args = parse_args(argv)
    if args.command != "run":
        import commands

        return commands.all_commands()[args.command].run(args)
    if args.demo:
        from demo import run_demo

        return run_demo(args.demo_dir, seed=args.seed, aggregation=args.aggregation, pipeline=args.demo)
    if not args.config.exists():
        # A fresh clone has toloka.example.ini only (toloka.ini holds one deployment's ids: not tracked).
        print(f"pipeline: no configuration file {args.config}: copy toloka.example.ini to it and set the "
              f"pool and skill ids (docs/toloka-setup.md), or run `python pipeline.py setup --config "
              f"{args.config} --environment SANDBOX` to create the pools and write it", file=sys.stderr)
        return 2
    import pipelines
    from engine.runner import RunOptions
    from engine.runner import main as run_main

    return run_main(args.config, RunOptions(once=args.once, fresh=args.fresh), pipelines.get)


if __name__ == "__main__":
    sys.exit(main())
