# Two commands do all the setup on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup browser demo test lint bench-quick clean lock

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(PY) -m lake.demo

# The console's browser tests drive Debian's Chromium through Playwright (no browser download).
browser:
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for the browser tests"; \
	  apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y chromium; }; }

test: setup browser
	$(VENV)/bin/ruff check lake catalog jobs tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check lake catalog jobs tests benchmarks
	$(VENV)/bin/mypy

bench-quick: setup
	for b in $$(ls benchmarks/*.py | xargs -n1 basename | grep -v __init__ | sed 's/\.py$$//'); do \
		$(PY) -m benchmarks.$$b --quick || exit 1; done

# Regenerate the pinned versions CI installs (run after changing dependencies).
lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV) lakehouse .pytest_cache
