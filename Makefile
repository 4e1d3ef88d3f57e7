# The two front-door commands (see README):
#   make run    set up, load the demo into the embedded store, run the web and the worker
#               (the Procfile, with honcho) on http://127.0.0.1:8000
#   make test   set up, start a local Neo4j, run lint and the whole test suite, stop Neo4j
SHELL := bash
.ONESHELL:
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1

# Test-only Neo4j: its own folder, port and password, wiped at every run.
TEST_NEO4J_PORT ?= 7688
TEST_NEO4J_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/netweave/neo4j-test
TEST_NEO4J_PASSWORD ?= netweave-test

.PHONY: run test lint redis-server jq chromium bench-import bench-import-large bench-quality bench-matching bench-api bench-web bench-digest bench-load bench-scaling clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Front-end packages, from the npm registry as package-lock.json pins them, copied into the
# static folder the app serves (nothing third-party is committed, nothing loads from a CDN).
VENDOR := netweave/web/static/vendor
$(VENDOR)/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/{swagger-ui,htmx,cytoscape,chart.js}
	cp node_modules/swagger-ui-dist/{swagger-ui-bundle.js,swagger-ui.css,LICENSE,NOTICE} $(VENDOR)/swagger-ui/
	cp node_modules/htmx.org/{dist/htmx.min.js,LICENSE} $(VENDOR)/htmx/
	cp node_modules/cytoscape/LICENSE $(VENDOR)/cytoscape/
	# an ES module: served as .js, which every server types as JavaScript
	cp node_modules/cytoscape/dist/cytoscape.esm.min.mjs $(VENDOR)/cytoscape/cytoscape.esm.min.js
	cp node_modules/chart.js/{dist/chart.umd.min.js,LICENSE.md} $(VENDOR)/chart.js/
	touch $@

run: $(BIN)/.installed $(VENDOR)/.installed
	@$(BIN)/flask --app app demo load
	@echo "Netweave on http://$${HOST:-127.0.0.1}:$${PORT:-8000}; the worker computes suggestions (Ctrl-C stops both)"
	# Run exactly what the Procfile says (web and worker), so local runs and deployments agree.
	PATH="$(CURDIR)/$(BIN):$$PATH" exec $(BIN)/honcho start --no-colour -p $${PORT:-8000}

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Runs $(1) with a fresh test-only Neo4j started first and stopped after, whatever happens.
define with_test_neo4j
	export NETWEAVE_NEO4J_DIR="$(TEST_NEO4J_DIR)" NETWEAVE_NEO4J_PORT=$(TEST_NEO4J_PORT) \
	       NETWEAVE_NEO4J_PASSWORD="$(TEST_NEO4J_PASSWORD)"
	graph/neo4j-server reset
	trap 'graph/neo4j-server stop' EXIT
	graph/neo4j-server start
	export NETWEAVE_TEST_NEO4J_URL="$$(graph/neo4j-server url)" NETWEAVE_TEST_NEO4J_PASSWORD="$(TEST_NEO4J_PASSWORD)"
	$(1)
endef

# The Redis-backed queue is tested against a real redis-server (Debian's), which the tests
# start on a free loopback port; installed here when missing.
redis-server:
	@command -v redis-server >/dev/null || { echo "installing Debian's redis-server"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get install -y -qq redis-server >/dev/null 2>&1 || \
	  { $$sudo apt-get update -qq && $$sudo apt-get install -y -qq redis-server >/dev/null; }; }

# docs/api.md's walkthrough, which the suite runs as written, reads JSON with jq.
jq:
	@command -v jq >/dev/null || { echo "installing Debian's jq"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get install -y -qq jq >/dev/null 2>&1 || \
	  { $$sudo apt-get update -qq && $$sudo apt-get install -y -qq jq >/dev/null; }; }

# The web app's browser tests drive Debian's chromium through Playwright (a browser download by
# Playwright itself is not possible here); installed when missing.
chromium:
	@command -v chromium >/dev/null || { echo "installing Debian's chromium"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  { $$sudo apt-get update -qq && $$sudo apt-get install -y -qq chromium >/dev/null; }; }

test: $(BIN)/.installed $(VENDOR)/.installed lint redis-server jq chromium
	@$(call with_test_neo4j,$(BIN)/pytest $(PYTEST_ARGS))

bench-import: $(BIN)/.installed
	@$(call with_test_neo4j,$(BIN)/python -m bench.importing)

bench-import-large: $(BIN)/.installed
	$(BIN)/python -m bench.importing --large

bench-quality: $(BIN)/.installed
	$(BIN)/python -m bench.quality

bench-matching: $(BIN)/.installed
	@$(call with_test_neo4j,$(BIN)/python -m bench.matching)

# The API under load: gunicorn on core 0, Debian's wrk (installed here when missing) on core 1.
bench-api: $(BIN)/.installed
	@command -v wrk >/dev/null || { echo "installing Debian's wrk"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get install -y -qq wrk >/dev/null 2>&1 || \
	  { $$sudo apt-get update -qq && $$sudo apt-get install -y -qq wrk >/dev/null; }; }
	$(call with_test_neo4j,$(BIN)/python -m bench.api)

bench-web: $(BIN)/.installed
	@$(call with_test_neo4j,$(BIN)/python -m bench.web)

# The weekly email for 1,000 salespeople (embedded store; the SMTP server on loopback).
bench-load: $(BIN)/.installed
	$(BIN)/python -m bench.load

bench-scaling: $(BIN)/.installed redis-server
	$(BIN)/python -m bench.scaling

bench-digest: $(BIN)/.installed
	$(BIN)/python -m bench.digest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache node_modules $(VENDOR)
