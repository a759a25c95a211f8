#!/usr/bin/env bash
# Fails when the lock files (requirements/*.txt, written by `make lock`) and pyproject.toml disagree.
# No network; a few hundred milliseconds. Checks:
#   - each lock's `# inputs-sha256:` header equals the hash of pyproject.toml's [project] dependencies,
#     optional-dependencies, requires-python, [build-system] requires and requirements/operator.in
#     (any edit to those without `make lock` fails here, even one the old pins would still satisfy);
#   - every entry is `name==version` with at least one sha256 hash (pip --require-hashes needs both);
#   - every direct requirement of each lock is pinned in it at a version its specifier allows
#     (build.txt: pip + build-system requires; dev.txt: dependencies + azure, s3, dev extras;
#     runtime.txt: dependencies + azure, s3 extras; operator.txt: requirements/operator.in);
#   - runtime.txt is a subset of dev.txt and operator.txt of runtime.txt, same versions and hashes
#     (the image runs exactly what the tests ran); operator.in names only [project] dependencies.
# Usage: hack/check-lock.sh [--fingerprint]   (--fingerprint prints the inputs hash; hack/lock.sh uses it)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python; [ -x "$PY" ] || PY=$(command -v python3.11 || command -v python3)
exec "$PY" - "$@" <<'EOF'
import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version
except ImportError:  # no venv yet: pip's own copy
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]
    from pip._vendor.packaging.version import Version  # type: ignore[no-redef]

REQ = Path("requirements")
LOCKS = ("build", "dev", "runtime", "operator")
# the environment the lock is for (hack/lock.sh): CPython 3.11, x86_64 Linux
ENV = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
       "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
       "implementation_name": "cpython", "platform_python_implementation": "CPython"}

pyproject = tomllib.loads(Path("pyproject.toml").read_text())
project = pyproject["project"]
deps = [Requirement(r) for r in project.get("dependencies", [])]
extras = {k: [Requirement(r) for r in v] for k, v in project.get("optional-dependencies", {}).items()}
build_requires = [Requirement(r) for r in pyproject.get("build-system", {}).get("requires", [])]
operator_in = [Requirement(line.split("#", 1)[0].strip())
               for line in (REQ / "operator.in").read_text().splitlines() if line.split("#", 1)[0].strip()]


def fingerprint() -> str:
    norm = lambda reqs: sorted(str(r) for r in reqs)  # noqa: E731
    data = {
        "requires-python": project.get("requires-python"),
        "dependencies": norm(deps),
        "optional-dependencies": {k: norm(v) for k, v in sorted(extras.items())},
        "build-system.requires": norm(build_requires),
        "operator.in": norm(operator_in),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


if sys.argv[1:] == ["--fingerprint"]:
    print(fingerprint())
    sys.exit(0)

problems: list[str] = []
FIX = "run `make lock` and commit requirements/"


def parse(name: str) -> tuple[str | None, dict[str, tuple[str, frozenset[str]]]]:
    """(inputs-sha256 header, {canonical name: (version, hashes)})"""
    path = REQ / f"{name}.txt"
    if not path.exists():
        problems.append(f"{path} is missing: {FIX}")
        return None, {}
    text = path.read_text()
    m = re.search(r"^# inputs-sha256: ([0-9a-f]{64})$", text, re.M)
    pins: dict[str, tuple[str, frozenset[str]]] = {}
    logical = re.sub(r"\\\n", " ", text)
    for line in logical.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if not line:
            continue
        hashes = frozenset(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
        spec = re.sub(r"--hash=\S+", "", line).strip()
        mm = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)(\s*;.*)?", spec)
        if not mm:
            problems.append(f"{path}: not an exact pin: {spec!r}")
            continue
        if not hashes:
            problems.append(f"{path}: {spec} has no sha256 hash")
        pins[canonicalize_name(mm.group(1))] = (mm.group(2), hashes)
    return (m.group(1) if m else None), pins


def applies(req: Requirement) -> bool:
    return req.marker is None or req.marker.evaluate({**ENV, "extra": ""})


def check_direct(name: str, pins: dict[str, tuple[str, frozenset[str]]], reqs: list[Requirement]) -> None:
    for req in filter(applies, reqs):
        have = pins.get(canonicalize_name(req.name))
        if have is None:
            problems.append(f"requirements/{name}.txt lacks {req} (pyproject.toml): {FIX}")
        elif not req.specifier.contains(Version(have[0]), prereleases=True):
            problems.append(f"requirements/{name}.txt pins {req.name}=={have[0]}, pyproject.toml wants {req}: {FIX}")


def check_subset(small: str, big: str, locks: dict[str, dict[str, tuple[str, frozenset[str]]]]) -> None:
    for pkg, (version, hashes) in sorted(locks[small].items()):
        other = locks[big].get(pkg)
        if other is None:
            problems.append(f"requirements/{small}.txt has {pkg}, requirements/{big}.txt does not: {FIX}")
        elif other != (version, hashes):
            problems.append(f"requirements/{small}.txt and requirements/{big}.txt differ on {pkg}: {FIX}")


expected = fingerprint()
locks: dict[str, dict[str, tuple[str, frozenset[str]]]] = {}
stale = []
for name in LOCKS:
    header, locks[name] = parse(name)
    if locks[name] and header != expected:
        stale.append(f"requirements/{name}.txt")
if stale:
    problems.append(f"{', '.join(stale)} locked from other inputs than the current pyproject.toml (dependencies, "
                    f"optional-dependencies, requires-python, build-system requires) and requirements/operator.in: {FIX}")

runtime_reqs = deps + extras.get("azure", []) + extras.get("s3", [])
check_direct("build", locks["build"], [Requirement("pip"), *build_requires])
check_direct("dev", locks["dev"], runtime_reqs + extras.get("dev", []))
check_direct("runtime", locks["runtime"], runtime_reqs)
check_direct("operator", locks["operator"], operator_in)
if locks["runtime"] and locks["dev"]:
    check_subset("runtime", "dev", locks)
if locks["operator"] and locks["runtime"]:
    check_subset("operator", "runtime", locks)
dep_names = {canonicalize_name(r.name) for r in deps}
for req in operator_in:
    if canonicalize_name(req.name) not in dep_names:
        problems.append(f"requirements/operator.in names {req.name}, which is not a [project] dependency")

if problems:
    print("hack/check-lock.sh: the lock does not match pyproject.toml:", *problems, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print("hack/check-lock.sh: requirements/ matches pyproject.toml ("
      + ", ".join(f"{n}.txt {len(locks[n])}" for n in LOCKS) + " pins)")
EOF
