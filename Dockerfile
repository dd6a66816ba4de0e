# One image for every role: `elevate run <role>` (the chart and docker-compose.yml pick
# the role with the command's arguments).
#
# Two stages: wheels are built with pip in the first, the runtime stage only installs
# them, so it carries no build cache and no source tree of its own.

FROM python:3.11.13-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY avro_schemas avro_schemas
COPY elevate elevate
COPY ingest ingest
COPY streams streams
COPY sinks sinks
COPY api api
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11.13-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    ELEVATE_ENV=production \
    ELEVATE_HOME=/var/lib/elevate \
    LOG_FORMAT=json
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels elevate \
    && groupadd --system --gid 10001 elevate \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/elevate --create-home elevate
# Faust keeps its table data relative to the working directory, so the working
# directory is ELEVATE_HOME: the volume the streams workers mount there.
WORKDIR /var/lib/elevate
# A numeric user, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
# ingest, api, and the metrics/health port every role serves (METRICS_PORT).
EXPOSE 8001 8000 9100
ENTRYPOINT ["elevate"]
CMD ["run", "all"]
