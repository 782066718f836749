# syntax=docker/dockerfile:1
# Palisade node (default) or control plane, from one image:
#   docker build -t palisade .
#   docker run -p 8000:8000 -v palisade-state:/var/lib/palisade \
#     -v ./palisade.yaml:/etc/palisade/palisade.yaml:ro palisade
#   docker run -p 8790:8790 -v palisade-control:/var/lib/palisade \
#     -v ./palisade.yaml:/etc/palisade/palisade.yaml:ro \
#     -e PALISADE_HEALTH_URL=http://127.0.0.1:8790/healthz palisade control --config /etc/palisade/palisade.yaml
# Mount your configuration at /etc/palisade/palisade.yaml (start from
# config/palisade.example.yaml; secrets via token_env / control_token_env and `docker run -e`).
# Keep `state_dir: /var/lib/palisade`, the volume. A published port (-p) reaches only a
# listener on the container's own interface: set `listen: 0.0.0.0:8790` in the control
# section (the example's 127.0.0.1 is unreachable from outside the container), and for
# Prometheus to scrape the node, `admin: 0.0.0.0:9090` in the node section.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# -- builder: the virtual environment, with everything compiled ------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A compiler only for a dependency without a wheel for this platform; it stays in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/palisade
WORKDIR /src
COPY pyproject.toml README.md ./
COPY node ./node
COPY addons ./addons
# PYTHONOPTIMIZE=1 at run time reads *.opt-1.pyc: make them here, the final image's
# site-packages is not writable by its user.
RUN /opt/palisade/bin/pip install --upgrade pip \
 && /opt/palisade/bin/pip install . \
 && /opt/palisade/bin/python -O -m compileall -q /opt/palisade/lib

# -- final: slim, no compiler, no source tree, non-root ---------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="palisade" \
      org.opencontainers.image.description="API abuse prevention node (mitmproxy reverse proxy with bot detection)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /opt/palisade /opt/palisade
# A numeric user: Kubernetes' runAsNonRoot can check it without an /etc/passwd lookup.
RUN install -d -m 0700 -o 10001 -g 10001 /var/lib/palisade \
 && install -d -m 0755 /etc/palisade
ENV PATH=/opt/palisade/bin:$PATH \
    PYTHONOPTIMIZE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/palisade \
    PALISADE_HEALTH_URL=http://127.0.0.1:9090/healthz
USER 10001:10001
WORKDIR /var/lib/palisade
# IP lists, learned profile, mitmproxy's confdir, sync spool; control.db for the control plane.
VOLUME ["/var/lib/palisade"]
# 8000 the proxy, 9090 the node's admin listener (/metrics, /healthz), 8790 the control plane.
EXPOSE 8000 9090 8790
# The slim image has no curl: ask the health endpoint with the interpreter we ship anyway.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; r = urllib.request.urlopen(os.environ.get('PALISADE_HEALTH_URL', 'http://127.0.0.1:9090/healthz'), timeout=4); sys.exit(0 if r.status == 200 else 1)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["palisade"]
CMD ["node", "--config", "/etc/palisade/palisade.yaml"]
