"""`mlops-operator serve`: a model server speaking the Open Inference Protocol V2 over REST.

Load order matters: the artifact is verified and loaded before the port opens, so a refused artifact
means a non-zero exit (contracts.ExitCode.INTEGRITY_ERROR) and readiness is never reported.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Sequence

from mlops_operator import contracts
from mlops_operator.contracts import ExitCode
from mlops_operator.workloads.serve.options import ServeOptions, parse

log = logging.getLogger("mlops_operator.serve")


def main(argv: Sequence[str]) -> int:
    try:
        options = parse(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help exits 0
        return int(exc.code or 0)
    logging.basicConfig(level=options.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if options.workers > 1:
        # Before prometheus_client is first imported: every worker then writes its own files.
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="mlops-serve-metrics-"))
    if options.auth_token_file:
        from mlops_operator.workloads.serve.auth import TokenCheck, TokenFileError

        try:
            TokenCheck(options.auth_token_file)  # before the port opens: never serve unchecked
        except TokenFileError as exc:
            return _refuse(str(exc), ExitCode.SPEC_ERROR)
    from mlops_operator.workloads.serve.artifact import load_verified_model
    from mlops_operator.workloads.serve.errors import ArtifactRefused, ArtifactUnavailable
    from mlops_operator.workloads.serve.model import ServedModel

    try:
        estimator = load_verified_model(options.artifact_uri, options.sha256)
        model = ServedModel(options.model_name, options.model_version, estimator)
    except ArtifactRefused as exc:
        return _refuse(f"refusing artifact: {exc}", ExitCode.INTEGRITY_ERROR)
    except ArtifactUnavailable as exc:
        return _refuse(f"cannot read the artifact: {exc}", ExitCode.STORE_ERROR)
    except ValueError as exc:
        return _refuse(f"artifact is not a servable model: {exc}", ExitCode.INTEGRITY_ERROR)
    log.info(
        "loaded %s version %s: %d features, fast path %s",
        model.name,
        model.version,
        len(model.features),
        "on" if model.uses_fast_path else "off",
    )
    from mlops_operator.workloads.serve.runner import run

    return run(options, model)


def _refuse(message: str, code: ExitCode) -> int:
    print(f"mlops-operator serve: {message}", file=sys.stderr)
    path = os.environ.get(contracts.ENV_TERMINATION_LOG, contracts.DEFAULT_TERMINATION_LOG)
    if contracts.ENV_TERMINATION_LOG not in os.environ and not os.path.exists(path):
        return int(code)  # not in a pod: the kubelet creates the file, we never do
    try:
        with open(path, "w") as f:  # Kubernetes shows it as the container's termination message
            f.write(message[: contracts.TERMINATION_MESSAGE_LIMIT])
    except OSError:
        pass
    return int(code)


__all__ = ["ServeOptions", "main"]
