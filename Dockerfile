# One image for the operator and every workload: `mlops-operator run|profile|train|serve|drift`.
#
# Built offline: hack/image.sh first puts a wheel of every dependency (plus pip, setuptools, wheel)
# into build/wheels/ on the host, so the build itself runs with `docker build --network none` and
# installs with `--no-index`. BASE_IMAGE is the public python:3.11-slim on any normal Docker host;
# on machines without a registry hack/image.sh passes localhost/bookworm-python:3.11 (a debootstrap'd
# Debian bookworm with Debian's python3, hack/build-base-image.sh).
# The legacy builder is enough (no BuildKit features): multi-stage keeps the wheels out of the image.
ARG BASE_IMAGE=python:3.11-slim

# --- dependencies (cached until build/wheels changes) ---------------------------------------------
FROM ${BASE_IMAGE} AS deps
COPY build/wheels/ /tmp/wheels/
# Debian's python3 has no ensurepip: make the venv without pip and run pip from its wheel.
RUN python3 -m venv --without-pip /opt/venv \
 && PIP="/opt/venv/bin/python $(ls /tmp/wheels/pip-*.whl | head -n1)/pip" \
 && $PIP install --no-index --no-cache-dir --disable-pip-version-check --find-links /tmp/wheels \
      -r /tmp/wheels/requirements.txt

# --- the project itself, installed under /out (a small layer that changes with the code) -------------
FROM deps AS app
COPY pyproject.toml README.md /src/
COPY operator/ /src/operator/
RUN PIP="/opt/venv/bin/python $(ls /tmp/wheels/pip-*.whl | head -n1)/pip" \
 && $PIP install --no-index --no-cache-dir --disable-pip-version-check --find-links /tmp/wheels \
      --no-deps --prefix /out /src \
 && /opt/venv/bin/python -c 'import compileall, glob, sys; d = glob.glob("/out/lib/python3*/site-packages")[0]; \
      sys.exit(not compileall.compile_dir(d, ddir=d.replace("/out", "/opt/venv", 1), quiet=1))'

# --- runtime --------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
RUN echo 'mlops:x:10001:10001:mlops:/home/mlops:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'mlops:x:10001:' >>/etc/group \
 && mkdir -p /home/mlops /data \
 && chown 10001:10001 /home/mlops /data
COPY --from=deps /opt/venv /opt/venv
COPY --from=app /out/ /opt/venv/
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8 HOME=/home/mlops
# numeric, non-root: satisfies runAsNonRoot without a runAsUser in the pod spec
USER 10001:10001
WORKDIR /home/mlops
ENTRYPOINT ["mlops-operator"]
CMD ["--help"]
