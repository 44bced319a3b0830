# Everyday commands for this stage: `make run` starts the chat on the development
# server, `make serve` on gunicorn as in production (honcho runs the Procfile's release
# process, then its web process), `make test` runs the tests and reports their coverage,
# `make lint` checks the code style, `make mutate` tries the tests against mutants of
# the code. They call manage.py, which has more commands, and create the virtual
# environment on first use. VENV can point elsewhere: the stage
# checker shares one environment between stages with the same requirements.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: run serve test lint mutate

run: $(VENV)/.installed
	$(BIN)/python manage.py db upgrade
	$(BIN)/python manage.py runserver

# honcho runs the Procfile's commands, which find python and gunicorn on the PATH.
serve: export PATH := $(abspath $(BIN)):$(PATH)
serve: $(VENV)/.installed
	$(BIN)/honcho start release
	$(BIN)/honcho start web

test: $(VENV)/.installed
	$(BIN)/python manage.py test --cov

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

# Tutorial infrastructure: make tags, make stages, make docs, make docs-serve, ...
include tutorial/tutorial.mk
