"""The programs that run inside pods: `profile`, `train`, `serve`, `drift`, `registry`, `notify`.

Each is a module with `main(argv) -> int`, dispatched lazily by `mlops_operator.cli`. Workloads import
only `contracts`, `api`, `store` and `drift`: never kopf, a Kubernetes client, or the operator's layers
(an import-linter contract in pyproject.toml enforces it).

Shared pieces: `workloads.common` (the plan command line, logging, result emission, exit-code
mapping), `workloads.data` (reading sources), `workloads.artifacts` (the verified model loader the
server uses). `profile` applies `workloads.quality` (schema and quality rules) and records
`workloads.summaries` (per-feature statistics and reference samples).
"""
