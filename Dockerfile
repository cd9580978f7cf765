# syndicate: `docker run -p 8080:8080 -v ./config:/config -v syndicate-data:/data syndicate`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SYNDICATE_CONFIG=/config/syndicate.yaml

WORKDIR /app
COPY pyproject.toml README.md ./
COPY syndicate ./syndicate
RUN pip install --no-cache-dir '.[postgres]' && useradd --system --home /data syndicate

# The bundled config is the default; mount your own directory over /config.
COPY config /config
# The data directory ("data" relative to the working directory) is /data.
RUN mkdir -p /data && chown syndicate /data
WORKDIR /
VOLUME ["/config", "/data"]
USER syndicate
EXPOSE 8080
ENTRYPOINT ["syndicate"]
CMD ["run", "--listen", "0.0.0.0:8080"]
