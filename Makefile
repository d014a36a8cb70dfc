# Two commands do all the set-up: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-postgres bench venv system-deps clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

# Debian's Chromium for the browser tests (Playwright cannot download its own here).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "could not install chromium: browser tests will be reported as skipped"; }

demo: $(STAMP)
	$(PY) -m demo.run

test: $(STAMP) system-deps
	$(PY) -m pytest

# The same suite against PostgreSQL (DATABASE_URL defaults to the local `test` database).
test-postgres: $(STAMP) system-deps
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} $(PY) -m pytest

bench: $(STAMP)
	$(PY) -m bench.click_overhead
	$(PY) -m bench.export_copy

clean:
	rm -rf $(VENV) var .pytest_cache test-artifacts
