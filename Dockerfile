# A slim image that runs the API as a non-root user.
# Give it DATABASE_URL for a real deployment; without one it starts the embedded PostgreSQL
# in /data (mount a volume there), which suits a demo, not production.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY migrations ./migrations
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 contactcenter \
    && mkdir /data && chown contactcenter /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CC_HOST=0.0.0.0 \
    CC_DATA_DIR=/data \
    CC_LOG_JSON=true
USER contactcenter
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health').status != 200)"
CMD ["contactcenter", "serve"]
