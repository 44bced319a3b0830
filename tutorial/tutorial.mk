# Tutorial infrastructure, included at the end of the top-level Makefile.
# It lives under tutorial/ so that it can change in any commit, not only in stages.
#
#   make tags         create the missing vX.Y tags (a fresh clone may have none)
#   make stages       run every stage's tests at its own commit (STAGES="v0.1 v0.2" for some),
#                     then the command blocks of its page's Try it
#   make try-its      only the Try it blocks (tutorial/tryit.py), stage by stage
#   make history      check the history rules of tutorial/README.md
#   make facts        record each stage's test count in docs/data/stage-facts.json
#   make docs         generate the stage diffs and pictures, build the site into site/
#                     (the pictures need Graphviz: apt-get install graphviz)
#   make docs-serve   the same, served with live reload on http://127.0.0.1:8000
#   make screenshots  take the screenshots the docs show (SHOTS_OUT=dir to put them elsewhere)
#   make browsers-nginx  the same check with the chat as `make serve` runs it (v0.18 and
#                     later): web processes behind nginx, with Redis; its screenshots go
#                     in a temporary folder unless SHOTS_OUT says where
#   make stand-ins    build the images that stand in for the official ones where no image
#                     registry is reachable (tutorial/containers/README.md), and podman-compose
#   make test-containers-here  make test-containers (v0.23 and later) with podman and the
#                     stand-ins, as CI runs it; make browsers-containers the browsers' check
#   make bench        measure the scalability claims (SCENARIO=name for one; see bench/README.md)
#   make bench-smoke  the same in a few seconds per scenario, into a temporary folder
#
# The stage tool needs only the standard library, so it runs with the system python3.
STAGE_TOOL := python3 tutorial/stage.py
DOCS_VENV := .venv-docs
SHOTS_VENV := .venv-shots
BENCH_VENV := .venv-bench
COMPOSE_VENV := .venv-compose

.PHONY: tags stages try-its history facts docs docs-serve screenshots browsers-nginx bench bench-smoke \
	stand-ins test-containers-here browsers-containers

tags:
	$(STAGE_TOOL) tag

stages:
	$(STAGE_TOOL) check $(STAGES)

try-its:
	$(STAGE_TOOL) try-it $(STAGES)

history:
	$(STAGE_TOOL) history

facts:
	$(STAGE_TOOL) facts $(STAGES)

# The docs get their own venv, rebuilt when docs/requirements.txt changes.
$(DOCS_VENV)/.installed: docs/requirements.txt
	test -x $(DOCS_VENV)/bin/python || $(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r docs/requirements.txt
	touch $@

# Material 9.8 prints a banner at every run: it reaches end of life on 2027-05-05
# and Zensical is its successor (the site uses no plugin that would stop a move).
# The banner is no build warning; NO_MKDOCS_2_WARNING=1 keeps it out of the logs.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs

# The Measured page's tables come from the committed results in bench/results/.
BENCH_DOCS := python3 bench/bench.py docs

docs: $(DOCS_VENV)/.installed
	$(STAGE_TOOL) docs
	$(BENCH_DOCS)
	$(MKDOCS) build --strict

# DOCS_PORT: 8000 is also where v0.18's `make serve` puts nginx.
DOCS_PORT ?= 8000
docs-serve: $(DOCS_VENV)/.installed
	$(STAGE_TOOL) docs
	$(BENCH_DOCS)
	$(MKDOCS) serve --dev-addr 127.0.0.1:$(DOCS_PORT)

# Screenshots drive a browser from their own venv against the app in $(VENV).
$(SHOTS_VENV)/.installed: tutorial/requirements-screenshots.txt
	test -x $(SHOTS_VENV)/bin/python || $(PYTHON) -m venv $(SHOTS_VENV)
	$(SHOTS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tutorial/requirements-screenshots.txt
	touch $@

SHOTS_OUT ?= docs/img

# From v0.17, the page needs the Socket.IO client that `npm ci` installs (the app's Makefile).
SHOTS_NEEDS := $(SHOTS_VENV)/.installed $(VENV)/.installed $(if $(wildcard package.json),node_modules/.installed)
SHOTS := $(SHOTS_VENV)/bin/python tutorial/screenshots.py --python $(abspath $(BIN))/python --out $(SHOTS_OUT)

screenshots: $(SHOTS_NEEDS)
	$(SHOTS)

# Redis is FLACK_TEST_REDIS_URL's server, or this machine's; nginx is Debian's. Its
# screenshots go in a new temporary folder unless SHOTS_OUT is given: they are a check,
# and would otherwise replace the docs' own with pictures of the same pages.
BROWSERS_OUT = $(if $(filter file undefined,$(origin SHOTS_OUT)),$$(mktemp -d),$(SHOTS_OUT))

browsers-nginx: $(SHOTS_NEEDS)
	$(SHOTS_VENV)/bin/python tutorial/screenshots.py --python $(abspath $(BIN))/python \
		--out "$(BROWSERS_OUT)" --serve

# The benchmark checks out stages in temporary worktrees, with the stage checker's venvs,
# and loads them with wrk (apt-get install wrk); its own venv only draws the charts.
$(BENCH_VENV)/.installed: bench/requirements.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

# SCENARIO=name runs one scenario, BENCH_SECONDS=n sets the length of each wrk run
# (web-servers), BENCH_REPETITIONS=n the rounds of the scenarios that repeat theirs
# (test-suite, link-previews, web-servers), BENCH_OUT=dir writes
# results, charts and snippets there instead.
BENCH_OPTIONS := $(if $(SCENARIO),--scenario $(SCENARIO)) \
	$(if $(BENCH_SECONDS),--seconds $(BENCH_SECONDS)) \
	$(if $(BENCH_REPETITIONS),--repetitions $(BENCH_REPETITIONS)) \
	$(if $(BENCH_OUT),--out $(BENCH_OUT))

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/bench.py run $(BENCH_OPTIONS)

bench-smoke: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/bench.py run --smoke $(BENCH_OPTIONS)

# Containers on the tutorial's machines: podman (Debian's 4.3, with runc), the settings of
# tutorial/containers/containers.conf, images that HEALTHCHECK survives (docker format),
# and the stand-in images that stand-ins.env names, passed to compose and the Dockerfile.
$(COMPOSE_VENV)/.installed: tutorial/requirements-compose.txt
	test -x $(COMPOSE_VENV)/bin/python || $(PYTHON) -m venv $(COMPOSE_VENV)
	$(COMPOSE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tutorial/requirements-compose.txt
	touch $@

HERE_CONTAINERS := CONTAINERS_CONF=$(abspath tutorial/containers/containers.conf) BUILDAH_FORMAT=docker \
	$$(grep -v '^\#' tutorial/containers/stand-ins.env | xargs)

stand-ins: $(COMPOSE_VENV)/.installed
	CONTAINERS_CONF=$(abspath tutorial/containers/containers.conf) tutorial/containers/build-stand-ins

test-containers-here: stand-ins
	env $(HERE_CONTAINERS) $(MAKE) test-containers COMPOSE=$(abspath $(COMPOSE_VENV))/bin/podman-compose

browsers-containers: stand-ins $(SHOTS_NEEDS)
	env $(HERE_CONTAINERS) $(SHOTS_VENV)/bin/python tutorial/screenshots.py \
		--python $(abspath $(BIN))/python --out "$(BROWSERS_OUT)" \
		--compose $(abspath $(COMPOSE_VENV))/bin/podman-compose
