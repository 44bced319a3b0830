# Flack's image: one image for the web processes, the Celery worker and beat, which
# compose.yaml starts with a command each. `docker build -t flack .` builds it.
#
# BASE is the Python that runs the app, NODE_BASE the npm that installs the browser's
# Socket.IO client. A machine that cannot pull the official images passes its own
# (--build-arg BASE=...), as the tutorial's CI does (v0.23's page).
ARG BASE=python:3.13-slim
ARG NODE_BASE=node:22-slim

# 1. The browser's Socket.IO client, exactly as package-lock.json pins it.
FROM ${NODE_BASE} AS client
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel error

# 2. Python's packages, in a virtual environment that the last stage copies whole:
# pip, its cache and anything a package needs only to install stay behind.
FROM ${BASE} AS packages
RUN python3 -m venv /opt/flack
COPY requirements.txt ./
RUN /opt/flack/bin/pip install --no-cache-dir --disable-pip-version-check -r requirements.txt

# 3. What runs: the app's files belong to root and are read by an unprivileged user,
# so that a flaw in the app cannot rewrite the app.
FROM ${BASE}
RUN useradd --system --no-create-home --home-dir /nonexistent flack
COPY --from=packages /opt/flack /opt/flack
WORKDIR /app
COPY --from=client /build/node_modules ./node_modules
COPY . .
ENV PATH=/opt/flack/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLACK_CONFIG=production \
    HOST=0.0.0.0 \
    PORT=5000 \
    BEAT_SCHEDULE_FILE=/tmp/celerybeat-schedule
USER flack
EXPOSE 5000
# The web process answers (/healthz); compose.yaml gives the worker and beat their own.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=2)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "flack.wsgi:app"]
