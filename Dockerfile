# One image for every role: `elevate run <role>`.
FROM python:3.11.7-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LOG_FORMAT=json ELEVATE_ENV=production
WORKDIR /app
COPY pyproject.toml README.md ./
COPY avro_schemas avro_schemas
COPY elevate elevate
COPY ingest ingest
COPY streams streams
COPY sinks sinks
COPY api api
RUN pip install --no-cache-dir . && useradd --create-home --uid 10001 elevate
USER elevate
ENTRYPOINT ["elevate"]
CMD ["run", "all"]
