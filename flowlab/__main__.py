"""FlowLab command line.

    python -m flowlab densities
    python -m flowlab train --density moons --method relative --layers 16 --budget 60 --out runs/moons
    python -m flowlab bench ...        (flowlab.benchmark.cli_main)
    python -m flowlab figure ...       (flowlab.compare.cli_main)
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .cli_train import add_train_args, run_train

SUBMODULE_COMMANDS = {"bench": "flowlab.benchmark", "figure": "flowlab.compare"}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBMODULE_COMMANDS:
        return int(importlib.import_module(SUBMODULE_COMMANDS[argv[0]]).cli_main(argv[1:]) or 0)
    parser = argparse.ArgumentParser(prog="python -m flowlab", description="FlowLab: normalizing flows, hands on.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("densities", help="list the toy densities")
    add_train_args(sub.add_parser("train", help="train a flow on a toy density"))
    sub.add_parser("bench", help="time gradient methods vs dimension (see: python -m flowlab bench --help)")
    sub.add_parser("figure", help="convergence figure (see: python -m flowlab figure --help)")
    args = parser.parse_args(argv)
    if args.command == "densities":
        from .densities import REGISTRY

        for name, d in REGISTRY.items():
            print(f"{name:16s} {'[paper] ' if d.paper else ''}{d.description}")
        return 0
    try:
        return run_train(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
