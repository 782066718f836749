# Palisade: `make run` starts the demo, `make test` runs the tests. Both set up .venv first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# First interpreter >= 3.12 among PATH and pyenv's versions (3.12 preferred: what CI runs).
FIND_PY := for c in python3.12 python3 python3.13 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python 2>/dev/null | sort -V); do \
	  p=$$(command -v $$c 2>/dev/null) || continue; \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; \
	done

.PHONY: setup test test-all run lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
	  py=$$($(FIND_PY)); \
	  if [ -z "$$py" ]; then \
	    echo "error: Palisade needs Python >= 3.12; install it (e.g. 'pyenv install 3.12' or 'apt-get install python3.12 python3.12-venv') and run make again" >&2; exit 1; \
	  fi; \
	  echo "using $$py"; $$py -m venv $(VENV); \
	fi
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

test: setup
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
