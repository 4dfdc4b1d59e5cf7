# One image for the build plane (code location, webserver, daemon) and the query service;
# docker-compose.app.yml gives each its command, secrets and network.
FROM python:3.11-slim
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
COPY knowledge knowledge
# The CPU build of torch (the default wheel on PyPI carries CUDA); then the project.
RUN python -m venv .venv \
 && .venv/bin/pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && .venv/bin/pip install --no-cache-dir -e ".[postgres]"
RUN useradd --system --home /app knowledge && mkdir -p /data /opt/dagster/home && chown knowledge /data /opt/dagster/home
COPY deploy/dagster.prod.yaml /opt/dagster/home/dagster.yaml
USER knowledge
