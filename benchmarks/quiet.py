"""Rules every benchmark in benchmarks/ follows before it writes a results file.

1. The machine must be quiet. The 1-minute load average is read at start; above MAX_LOAD (1.0 on
   this project's 2-core machine) the benchmark refuses to run and exits with BUSY_EXIT_CODE and a
   message saying why. `--force-busy` runs anyway and stamps the results `"valid": false`; the
   README generators (require_valid) refuse such results, so a busy run can be inspected but never
   published.
2. The load average is recorded before and after (conditions()["load_before"/"load_after"]).
3. Library versions are recorded: numpy, scipy, scikit-learn, pandas and pyarrow of this process,
   and of each peer's interpreter (versions_of), so a table can say which numpy each peer ran on.

Usage in a benchmark script (run as `.venv/bin/python benchmarks/<dir>/<script>.py`):

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import quiet

    quiet.add_arguments(parser)
    args = parser.parse_args()
    gate = quiet.Gate.enter(args.force_busy, "serving")     # exits here on a busy machine
    ...
    results["conditions"] = gate.conditions(peers={"mlserver": "/var/tmp/bench-mlserver/bin/python"})

and in a README generator:

    quiet.require_valid(results, path)                      # exits on busy or unrecorded results
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_LOAD = 1.0  # 1-minute load average at start, on this project's 2-core machine
BUSY_EXIT_CODE = 3
LIBRARIES: tuple[str, ...] = ("numpy", "scipy", "scikit-learn", "pandas", "pyarrow")

_VERSIONS_SNIPPET = """
import importlib.metadata as m, json, platform, sys
out = {"python": platform.python_version(), "executable": sys.executable}
for name in json.loads(sys.argv[1]):
    try:
        out[name] = m.version(name)
    except m.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force-busy",
        action="store_true",
        help=f"run even if the 1-minute load average is above {MAX_LOAD} at start; the results are then "
        'marked "valid": false and the README generators refuse them',
    )


def versions(packages: Iterable[str] = LIBRARIES) -> dict[str, str | None]:
    """Installed versions in this interpreter (None: not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def versions_of(python: str | Path, packages: Iterable[str] = LIBRARIES) -> dict[str, str | None]:
    """Installed versions in another interpreter (a peer's venv); {"error": ...} if it cannot run."""
    try:
        done = subprocess.run(
            [str(python), "-c", _VERSIONS_SNIPPET, json.dumps(list(packages))],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        parsed: dict[str, str | None] = json.loads(done.stdout.strip().splitlines()[-1])
        return parsed
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        return {"error": f"{python}: {type(exc).__name__}: {exc}"}


@dataclass
class Gate:
    """The start-of-run check and the record that goes into results["conditions"]."""

    benchmark: str
    forced: bool
    load_before: tuple[float, float, float]
    started: float = field(default_factory=time.time)

    @classmethod
    def enter(cls, force_busy: bool, benchmark: str, *, max_load: float = MAX_LOAD) -> Gate:
        load = os.getloadavg()
        busy = load[0] > max_load
        if busy and not force_busy:
            print(
                f"{benchmark}: refusing to benchmark: the 1-minute load average is {load[0]:.2f} (> {max_load} on "
                f"this {os.cpu_count()}-core machine; 5/15-minute: {load[1]:.2f}/{load[2]:.2f}). Wait for a quiet "
                "machine, or pass --force-busy to run anyway with the results marked not valid.",
                file=sys.stderr,
            )
            raise SystemExit(BUSY_EXIT_CODE)
        if busy:
            print(
                f"{benchmark}: --force-busy: load average {load[0]:.2f} > {max_load}; results will be marked "
                '"valid": false and no README generator will render them',
                file=sys.stderr,
            )
        return cls(benchmark, forced=busy, load_before=load)

    @property
    def valid(self) -> bool:
        return not self.forced

    def conditions(
        self,
        *,
        peers: Mapping[str, str | Path] | None = None,
        packages: Iterable[str] = LIBRARIES,
        peer_packages: Mapping[str, Iterable[str]] | None = None,
    ) -> dict[str, Any]:
        """Call once at the end: load before/after, validity, and the versions here and in each peer."""
        packages = tuple(packages)
        peer_versions = {
            name: versions_of(python, (*packages, *((peer_packages or {}).get(name, ()))))
            for name, python in (peers or {}).items()
        }
        return {
            "benchmark": self.benchmark,
            "valid": self.valid,
            "forced_busy": self.forced,
            "max_load": MAX_LOAD,
            "cpus": os.cpu_count(),
            "load_before": list(self.load_before),
            "load_after": list(os.getloadavg()),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "elapsed_s": round(time.time() - self.started, 1),
            "platform": platform.platform(),
            "versions": versions(packages),
            "peer_versions": peer_versions,
        }


    def publish(self, results: dict[str, Any], output: Path | None, **conditions: Any) -> None:
        """Stamps the run's conditions into results, prints them, and writes them to output when given,
        which it refuses for a --force-busy run (such numbers may be read, never published)."""
        results["conditions"] = self.conditions(**conditions)
        print(json.dumps(results, indent=2))
        if output is None:
            return
        if not self.valid:
            raise SystemExit(f"not writing {output}: the run was --force-busy (not valid)")
        output.write_text(json.dumps(results, indent=2) + "\n")


def require_valid(results: Mapping[str, Any], source: str | Path) -> None:
    """For README generators: refuse results taken on a busy machine or without the rules' record."""
    conditions = results.get("conditions")
    if not isinstance(conditions, Mapping):
        raise SystemExit(
            f"{source}: no load-average record (taken before the benchmark rules in benchmarks/quiet.py): "
            "not rendering; re-run the benchmark on a quiet machine"
        )
    if not conditions.get("valid"):
        load = conditions.get("load_before", [float("nan")])[0]
        raise SystemExit(
            f"{source}: taken with --force-busy (1-minute load {load:.2f} at start > {conditions.get('max_load')}): "
            "not valid, not rendering; re-run the benchmark on a quiet machine"
        )


def is_valid(results: Mapping[str, Any]) -> bool:
    conditions = results.get("conditions")
    return isinstance(conditions, Mapping) and bool(conditions.get("valid"))


def numpy_line(conditions: Mapping[str, Any]) -> str:
    """One sentence for a README: the versions here, and which numpy each peer ran on."""
    here = conditions.get("versions", {})
    parts = [
        "ours: " + ", ".join(f"{k} {v}" for k, v in here.items() if k != "python" and v),
    ]
    for name, peer in (conditions.get("peer_versions") or {}).items():
        if "error" in peer:
            parts.append(f"{name}: versions not readable ({peer['error']})")
        else:
            parts.append(f"{name}: numpy {peer.get('numpy')}")
    return "; ".join(parts)


def wait_quiet(timeout: float, *, max_load: float = MAX_LOAD, every: float = 10.0) -> bool:
    """Wait (bounded) until the 1-minute load average is at most max_load; True if it got there."""
    deadline = time.monotonic() + timeout
    while True:
        if os.getloadavg()[0] <= max_load:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)


def main(argv: list[str] | None = None) -> int:
    """`python benchmarks/quiet.py --wait 900`: between benchmarks, let the last one's load decay."""
    parser = argparse.ArgumentParser(description="wait until the machine is quiet enough to benchmark")
    parser.add_argument("--wait", type=float, default=0, help="seconds to wait at most (0: just check)")
    args = parser.parse_args(argv)
    if wait_quiet(args.wait):
        return 0
    load = os.getloadavg()
    print(f"still busy after {args.wait:.0f} s: 1-minute load average {load[0]:.2f} > {MAX_LOAD}", file=sys.stderr)
    return BUSY_EXIT_CODE


if __name__ == "__main__":
    raise SystemExit(main())
