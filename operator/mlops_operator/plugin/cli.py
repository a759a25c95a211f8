"""`kubectl mlops` on the command line: the argument parser and `main`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from mlops_operator import __version__
from mlops_operator.plugin import commands, serving_history
from mlops_operator.plugin.cluster import Cluster
from mlops_operator.plugin.output import printable
from mlops_operator.plugin.resources import PluginError, resolve_kind
from mlops_operator.plugin.session import PluginSession

Command = Callable[[PluginSession, argparse.Namespace], int]


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a version number >= 1")
    return value


def _global_flags(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """kubectl's flags, accepted before or after the command (the later one wins)."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("-n", "--namespace", default=default(None), help="namespace (default: the context's)")
    parser.add_argument("--kubeconfig", default=default(None), help="path to the kubeconfig file")
    parser.add_argument("--context", default=default(None), help="kubeconfig context to use")
    parser.add_argument("-o", "--output", choices=("table", "json", "yaml"), default=default("table"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl mlops", description="Inspect and steer Datasets, Models and DriftMonitors (mlops.dev)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_flags(parser, suppress=False)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, fn: Command, help_: str) -> argparse.ArgumentParser:
        sub = subparsers.add_parser(name, help=help_, description=help_)
        _global_flags(sub, suppress=True)
        sub.set_defaults(handler=fn)
        return sub

    p = command("status", commands.cmd_status, "summary of the resources, or of one resource with its conditions")
    p.add_argument("kind", nargs="?", help="dataset|model|driftmonitor (or ds, mdl, dm)")
    p.add_argument("name", nargs="?")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="list the resources of every namespace")
    p = command("history", commands.cmd_history, "a Model's versions (state, score, gate, lineage) and serving periods")
    p.add_argument("model")
    p.add_argument(
        "--at",
        type=serving_history.instant,
        metavar="TIME",
        help="the version that served at this RFC 3339 time: its dataset version, metrics and approver",
    )
    p = command(
        "approve", commands.cmd_approve, "serve a validated version of a Manual Model (sets spec.approvedVersion)"
    )
    p.add_argument("model")
    p.add_argument("version", type=positive_int)
    p = command("reject", commands.cmd_reject, "never serve a version (annotation mlops.dev/rejected-versions)")
    p.add_argument("model")
    p.add_argument("version", type=positive_int)
    p.add_argument("--reason", required=True)
    p = command("retrain", commands.cmd_retrain, "train a new version now (annotation mlops.dev/retrain-requested)")
    p.add_argument("model")
    p.add_argument("--reason", default="requested with kubectl mlops")
    p = command("rollback", commands.cmd_rollback, "serve the previously served version again (or --to VERSION)")
    p.add_argument("model")
    p.add_argument("--to", type=positive_int, default=None, metavar="VERSION")
    p = command("why", commands.cmd_why, "explain a resource's conditions in plain words, with hints")
    p.add_argument("kind", help="dataset|model|driftmonitor (or ds, mdl, dm)")
    p.add_argument("name")
    p = command("drift", commands.cmd_drift, "a DriftMonitor's latest per-feature scores and report link")
    p.add_argument("monitor")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Exit status 0 on success, 1 with one `error:` line on stderr for anything the user can fix
    (including an API server that cannot be reached), 2 for bad arguments (argparse's)."""
    out, err = out or sys.stdout, err or sys.stderr
    args = build_parser().parse_args(argv)
    cluster: Cluster | None = None
    try:
        if args.command == "status" and args.kind:
            resolve_kind(args.kind)
        cluster = Cluster(args.kubeconfig, args.context)
        namespace = args.namespace or cluster.default_namespace()
        session = PluginSession(cluster, namespace, args.output, out, err, datetime.now(UTC))
        handler: Command = args.handler
        return handler(session, args)
    except PluginError as exc:
        print(f"error: {printable(str(exc))}", file=err)  # one line, whatever the cluster wrote
        return 1
    finally:
        if cluster is not None:
            cluster.close()
