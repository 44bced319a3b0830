# Everyday commands for this stage: `make run` starts the chat on the development
# server with a Celery worker beside it (honcho runs Procfile.dev), `make serve` as in
# production (honcho runs the Procfile's release process, then WEB_PROCESSES web
# processes, a worker and beat, with Redis as the broker and message queue, and nginx
# in front of them on http://127.0.0.1:8000), `make containers` the same in containers
# (compose.yaml, with PostgreSQL; `make containers-down` stops them), `make test` runs
# the quick tests and reports their coverage, `make test-all` all of them, with those
# that start and kill real servers, `make lint` checks the code style, `make mutate`
# tries the tests against mutants of the code. They call manage.py, which has more
# commands, and create the virtual environment and install the browser's Socket.IO
# client (npm ci) on first use. VENV can point elsewhere: the stage checker shares one
# environment between stages with the same requirements.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: run serve containers containers-down test test-all test-containers lint mutate

# honcho runs a Procfile's commands, which find python, celery and gunicorn on the PATH,
# and nginx, which Debian installs in /usr/sbin.
run serve: export PATH := $(abspath $(BIN)):$(PATH):/usr/sbin

# The worker's broker is a folder (LOCAL_BROKER_FOLDER): no Redis needed.
run: $(VENV)/.installed node_modules/.installed
	$(BIN)/python manage.py db upgrade
	$(BIN)/honcho -f Procfile.dev start

# Redis on this machine is the broker and Socket.IO's message queue, unless REDIS_URL
# is set in the environment (or CELERY_BROKER_URL, in the environment or .env).
# WEB_PROCESSES gunicorns, on ports WEB_PORT, WEB_PORT + 1, ..., behind nginx on
# PROXY_PORT, which keeps its files in SERVE_FOLDER.
WEB_PROCESSES ?= 2
WEB_PORT ?= 5000
PROXY_PORT ?= 8000
serve: export REDIS_URL ?= redis://127.0.0.1:6379/0
serve: export SERVE_FOLDER ?= $(abspath .serve)
# nginx is the one proxy in front: the rate limits count the address it saw.
serve: export PROXIES ?= 1
serve: $(VENV)/.installed node_modules/.installed
	$(BIN)/honcho start release
	$(BIN)/python deploy/local_nginx.py --web-processes $(WEB_PROCESSES) \
		--first-web-port $(WEB_PORT) --port $(PROXY_PORT) --folder $(SERVE_FOLDER)
	$(BIN)/honcho start --port $(WEB_PORT) --concurrency web=$(WEB_PROCESSES) \
		web worker beat proxy

# The same chat in containers, built from the Dockerfile and run by compose.yaml: Docker's
# compose by default, or COMPOSE=podman-compose. podman-compose makes each service's
# dependencies ones that podman must start with it, which podman 4.3 refuses once the
# migrations job has exited: --no-deps leaves that out.
COMPOSE ?= docker compose
COMPOSE_UP := $(COMPOSE) up --detach --build $(if $(findstring podman,$(COMPOSE)),--no-deps)

containers: compose.env
	$(COMPOSE_UP)
	@echo "Flack starts on http://127.0.0.1:$${FLACK_PORT:-8000}; $(COMPOSE) ps shows its health"

containers-down:
	$(COMPOSE) down

# The secrets of the container stack, new and random, in a file that git ignores.
compose.env: | compose.env.example
	key=$$($(PYTHON) -c 'import secrets; print(secrets.token_hex(32))'); \
	password=$$($(PYTHON) -c 'import secrets; print(secrets.token_hex(16))'); \
	sed -e "s/^SECRET_KEY=.*/SECRET_KEY=$$key/" -e "s/change-me/$$password/g" \
		compose.env.example > $@

# The quick tests; test-all adds those that start real servers and kill them (marked
# servers in the tests), which CI and the stage checker run.
test: $(VENV)/.installed node_modules/.installed
	$(BIN)/python manage.py test --cov

test-all: $(VENV)/.installed node_modules/.installed
	$(BIN)/python manage.py test --cov -m ""

# Build the image, run compose.yaml's stack and kill each container in turn (a project of
# its own, on free ports, removed at the end). One stack for all: no parallel workers.
test-containers: $(VENV)/.installed
	FLACK_TEST_COMPOSE="$(COMPOSE)" $(BIN)/python manage.py test -m servers -n 0 \
		tests/test_containers.py

lint: $(VENV)/.installed
	$(BIN)/python manage.py lint

# MUTANTS="flack.auth*" for one module's mutants; the survivors are listed at the end.
mutate: $(VENV)/.installed-dev
	$(BIN)/mutmut run $(MUTANTS)
	$(BIN)/mutmut results

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# The exact versions of package-lock.json; Flask serves the client from node_modules.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel error
	touch $@

# Tutorial infrastructure: make tags, make stages, make docs, make docs-serve, ...
include tutorial/tutorial.mk
