"""`mlops-operator <command>`: one console script for the operator and every workload.

Dispatch is lazy so a training or serving pod never imports kopf.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("mlops_operator.runner", "start the operator (kopf)"),
    "profile": ("mlops_operator.workloads.profile", "validate and profile a dataset version"),
    "train": ("mlops_operator.workloads.train", "train and evaluate a model version"),
    "serve": ("mlops_operator.workloads.serve", "serve a model over the Open Inference Protocol V2"),
    "drift": ("mlops_operator.workloads.drift", "check collected scoring inputs for drift"),
    "registry": ("mlops_operator.workloads.registry", "mirror a Model's version registry into the store"),
    "notify": ("mlops_operator.workloads.notify", "post a notification to a webhook"),
    "notify-events": ("mlops_operator.workloads.notify_events", "deliver a batch of signed CloudEvents"),
    "batch-score": ("mlops_operator.workloads.batch_score", "score one shard of a table with a model version"),
}


def _usage() -> str:
    lines = ["usage: mlops-operator <command> [options]", "", "commands:"]
    lines += [f"  {name:<8} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    if args[0] in {"-V", "--version"}:
        from mlops_operator import __version__

        print(__version__)
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"mlops-operator: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    result: int = module.main(rest)
    return result


if __name__ == "__main__":
    sys.exit(main())
