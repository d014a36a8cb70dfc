# Two commands do all the set-up: `make demo` and `make test`. Both build .venv first, from
# requirements-dev.txt (which pulls in requirements.txt, production's own pins; the Dockerfile
# installs that file alone).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-postgres bench venv system-deps clean demo-reset

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

# Debian's Chromium for the browser tests (Playwright cannot download its own here).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "could not install chromium: browser tests will be reported as skipped"; }
	@# Compose's own check of docker-compose.yml (`config` reads the file; no Docker engine needed).
	@command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || { \
	  echo "installing Debian's docker-compose (without an engine) to validate docker-compose.yml"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null 2>&1) \
	  || echo "could not install docker-compose: its config check will be reported as skipped"; }

demo: $(STAMP)
	$(PY) -m demo.run

test: $(STAMP) system-deps
	$(PY) -m pytest

# The same suite against PostgreSQL (DATABASE_URL defaults to the local `test` database).
test-postgres: $(STAMP) system-deps
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} $(PY) -m pytest

# bench.click_load drives the site with Debian's wrk (installed here when missing, as root).
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing Debian's wrk, the load generator of bench.click_load"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) \
	  || echo "could not install wrk: bench.click_load will say so and stop"; }
	$(PY) -m bench.click_load
	$(PY) -m bench.export_copy
	$(PY) -m bench.import_fairness
	$(PY) -m bench.bulk_register
	$(PY) -m bench.webhooks
	$(PY) -m bench.jobs_tracking

# The demo's state: its SQLite database (the embedded S3 keeps nothing on disk). `make demo`
# removes it by itself at every start, so that a run never lists media the S3 has forgotten.
demo-reset:
	rm -f var/demo.sqlite3 var/demo.sqlite3-wal var/demo.sqlite3-shm

clean: demo-reset
	rm -rf $(VENV) var .pytest_cache test-artifacts
