# Palisade: `make run` starts the demo, `make test` runs the tests. Both set up .venv first;
# `make test` also installs the Debian packages the tests use and starts the local PostgreSQL.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# First interpreter >= 3.12 among PATH and pyenv's versions (3.12 preferred: what CI runs).
FIND_PY := for c in python3.12 python3 python3.13 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python 2>/dev/null | sort -V); do \
	  p=$$(command -v $$c 2>/dev/null) || continue; \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; \
	done

# The system programs the tests run, as program:Debian package: the browser tests' chromium
# (Playwright cannot download a browser of its own here), systemd-analyze for the units and
# nginx as the trusted proxy of the forwarded-header tests.
TEST_SYSTEM_DEPS := chromium:chromium systemd-analyze:systemd nginx:nginx-light
APT_GET ?= apt-get

.PHONY: setup test-deps test test-fast run lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
	  py=$$($(FIND_PY)); \
	  if [ -z "$$py" ]; then \
	    echo "error: Palisade needs Python >= 3.12; install it (e.g. 'pyenv install 3.12', or Debian 13's python3 and python3-venv: Debian 12's python3 is 3.11) and run make again" >&2; exit 1; \
	  fi; \
	  echo "using $$py"; $$py -m venv $(VENV); \
	fi
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

# Missing packages are installed as root (apt-get update first); without root it says which.
test-deps:
	@missing=""; for dep in $(TEST_SYSTEM_DEPS); do \
	  command -v $${dep%%:*} >/dev/null 2>&1 || missing="$$missing $${dep##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq$$missing >/dev/null || exit 1; \
	  else \
	    echo "warning: the tests need Debian's$$missing (sudo apt-get update && sudo apt-get install -y$$missing); their tests skip, and fail under CI=true" >&2; \
	  fi; \
	fi
	@# PostgreSQL tests: the local server at 127.0.0.1:5432, started when installed but down.
	@if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -q 2>/dev/null; then \
	  pg_ctlcluster --skip-systemctl-redirect "$$(ls /etc/postgresql | head -1)" main start || true; \
	fi

test: setup test-deps
	$(PY) -m ruff check node addons tests bench
	# A fixed hash seed: sketch estimates (and so borderline detections) repeat run to run.
	PYTHONHASHSEED=0 $(PY) -m pytest -q -m "" $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -q

run: setup
	$(VENV)/bin/palisade demo

lint: setup
	$(PY) -m ruff check node addons tests bench

bench: setup
	$(PY) bench/replay.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
