"""FlowLab's command line: ``python -m flowlab <command>``.

    python -m flowlab densities                         the density registry
    python -m flowlab train --density moons --budget 60 --out runs/moons
    python -m flowlab bench --help                      gradient cost against D (the Timing page)
    python -m flowlab figure --help                     Compare's figures; the home page's training movie

Every bad argument is one line on stderr and exit status 2, before anything is created."""
from __future__ import annotations

import argparse
import importlib
import sys

from flowlab.densities import REGISTRY

COMMANDS = {"densities": (None, "list the densities"), "train": ("flowlab.cli.train", "train a flow on a density"),
            "bench": ("flowlab.cli.bench", "time gradient methods against the dimension"),
            "figure": ("flowlab.cli.figure", "the Compare page's figures and the home page's training movie")}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: "error: ..." on stderr and exit status 2 (no usage dump)."""

    def error(self, message):
        self.exit(2, f"error: {message}\n")


def fail(message: str) -> int:
    """Print one line for a bad argument and return the exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def list_densities() -> int:
    for name, d in REGISTRY.items():
        print(f"{name:16s} {'[paper] ' if d.paper else ''}{d.description}")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        p = Parser(prog="python -m flowlab", description="FlowLab: normalizing flows, hands on.")
        p.add_argument("command", choices=list(COMMANDS), help="; ".join(f"{k}: {v[1]}" for k, v in COMMANDS.items()))
        p.parse_args(argv[:1])
        return 2
    module, _ = COMMANDS[argv[0]]
    if module is None:
        return list_densities()
    return int(importlib.import_module(module).main(argv[1:]) or 0)
