# The two commands: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BUILD  := pyproject.toml hatch_build.py src/sandik/core/_fastcheck.c
STAMP  := $(VENV)/.installed-$(shell cat $(BUILD) | cksum | cut -d' ' -f1)

.PHONY: demo test install system-deps bench data clean

$(STAMP): $(BUILD)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests need (Chromium for browser tests); PostgreSQL is
# provided by the test set-up itself (tests/postgres.py).
system-deps:
	sh scripts/install-system-deps.sh

demo: $(STAMP)
	$(VENV)/bin/sandik demo

test: $(STAMP) system-deps
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(PY) bench/bench_core.py
	sh scripts/install-system-deps.sh bench
	$(PY) bench/bench_api.py

# Rebuild the shipped Turkey 2019/2024 election files from ../shared/data.
data: $(STAMP)
	$(PY) scripts/build_turkey_data.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis sandik.sqlite*
