# Two images from one Dockerfile, both installed from the hash-pinned lock (requirements/*.txt, `make lock`):
#   default (last stage, `workload`): `mlops-operator run|profile|train|serve|drift|registry|notify`, with
#       the azure and s3 extras, so one image runs the operator and every workload pod (az://, s3://)
#   --target operator: only what `mlops-operator run` imports (kopf, kubernetes, pydantic, PyYAML, croniter,
#       prometheus-client); the workloads' commands fail on import there
#
# Anywhere with network (pip reaches the package index from the build):
#   docker build -t <registry>/mlops-operator:<tag> .            (or: az acr build -r <acr> -t mlops-operator:<tag> .)
# This repo's CI (hack/image.sh) does the same with --build-arg BASE_IMAGE=localhost/bookworm-python:3.11 (a base
# that trusts the machine's proxy CA) and HTTP(S)_PROXY build args when set. Offline: `WHEELS=local hack/image.sh`
# downloads the locked wheels into build/wheels/ on the host and builds with `--network none --build-arg WHEELS=local`
# (pip --no-index from there).
# Either way pip checks every file against the lock's sha256 (--require-hashes) and takes wheels only.
#
# BASE_IMAGE: CPython 3.11 on Debian bookworm with ensurepip, pinned by the digest of its multi-arch index.
# The lock is for CPython 3.11 on x86_64 Linux (glibc >= 2.28). hack/image.sh passes
# localhost/bookworm-python:3.11 (debootstrap'd, hack/build-base-image.sh) where no registry is reachable.
# Works with the legacy builder and BuildKit alike (no BuildKit-only syntax).
ARG BASE_IMAGE=python:3.11.15-slim-bookworm@sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3

# --- tools: a pinned pip, setuptools and wheel in /opt/tools (never in the final images) ---------------
FROM ${BASE_IMAGE} AS tools
# index: pip downloads from the package index; local: from the wheels hack/image.sh put in build/wheels/
ARG WHEELS=index
# build/wheel[s] matches nothing in a plain checkout; COPY accepts that since the other sources exist
COPY requirements/build.txt requirements/runtime.txt requirements/operator.txt build/wheel[s] /tmp/deps/
RUN set -eu; \
    case "$WHEELS" in \
      index) echo >/tmp/deps/pip-source ;; \
      local) echo "--no-index --find-links /tmp/deps" >/tmp/deps/pip-source ;; \
      *) echo "WHEELS must be index or local, not '$WHEELS'" >&2; exit 2 ;; \
    esac; \
    python3 -m venv /opt/tools; \
    /opt/tools/bin/python -m pip install --no-cache-dir --disable-pip-version-check --no-warn-script-location \
      --require-hashes --only-binary :all: $(cat /tmp/deps/pip-source) -r /tmp/deps/build.txt
# pip of /opt/tools installing into the pip-less venv /opt/venv; scripts get #!/opt/venv/bin/python
ENV PIP_INTO_VENV="/opt/tools/bin/python -m pip --python /opt/venv/bin/python --disable-pip-version-check"

# --- the slim operator's dependencies: requirements/operator.txt -> /opt/venv ------------------------------
FROM tools AS operator-deps
RUN python3 -m venv --without-pip /opt/venv \
 && $PIP_INTO_VENV install --no-cache-dir --require-hashes --only-binary :all: $(cat /tmp/deps/pip-source) \
      -r /tmp/deps/operator.txt

# --- the project itself: a wheel, installed under /out (a small layer that changes with the code) --------
FROM tools AS app
COPY pyproject.toml README.md /src/
COPY operator/ /src/operator/
RUN python3 -m venv --without-pip /opt/venv \
 && /opt/tools/bin/python -m pip wheel --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation \
      --no-index -w /tmp/dist /src \
 && $PIP_INTO_VENV install --no-cache-dir --no-deps --no-index --no-compile --prefix /out /tmp/dist/*.whl \
 && /opt/venv/bin/python -c 'import compileall, glob, sys; d = glob.glob("/out/lib/python3*/site-packages")[0]; \
      sys.exit(not compileall.compile_dir(d, ddir=d.replace("/out", "/opt/venv", 1), quiet=1))'

# --- what both images share ---------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
RUN echo 'mlops:x:10001:10001:mlops:/home/mlops:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'mlops:x:10001:' >>/etc/group \
 && mkdir -p /home/mlops /data \
 && chown 10001:10001 /home/mlops /data
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8 HOME=/home/mlops
LABEL org.opencontainers.image.title="mlops-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
# numeric, non-root: satisfies runAsNonRoot without a runAsUser in the pod spec
USER 10001:10001
WORKDIR /home/mlops
ENTRYPOINT ["mlops-operator"]

# --- docker build --target operator: the operator Deployment's image ------------------------------------------
FROM runtime AS operator
COPY --from=operator-deps /opt/venv /opt/venv
COPY --from=app /out/ /opt/venv/
CMD ["run"]

# --- the workloads' dependencies: requirements/runtime.txt -> /opt/venv --------------------------------------
FROM tools AS deps
RUN python3 -m venv --without-pip /opt/venv \
 && $PIP_INTO_VENV install --no-cache-dir --require-hashes --only-binary :all: $(cat /tmp/deps/pip-source) \
      -r /tmp/deps/runtime.txt

# --- default: the operator and every workload ---------------------------------------------------------------
FROM runtime AS workload
COPY --from=deps /opt/venv /opt/venv
COPY --from=app /out/ /opt/venv/
CMD ["--help"]
