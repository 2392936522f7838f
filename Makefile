# The two commands a new machine needs: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# checkov (Bicep security scan) in its own venv: its pinned dependencies stay out of the app's venv.
IAC_VENV  := .local/iac-venv
IAC_STAMP := $(IAC_VENV)/.installed

.PHONY: soak install demo test test-fast lint iac-check fmt clean bench fuzz

install: $(STAMP) $(IAC_STAMP) node_modules/.installed

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	# A venv whose interpreter is gone (made on another machine or path) is made anew.
	$(PY) -c '' 2>/dev/null || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(IAC_STAMP): requirements-iac.txt
	$(IAC_VENV)/bin/python -c '' 2>/dev/null || { rm -rf $(IAC_VENV) && $(PYTHON) -m venv $(IAC_VENV); }
	$(IAC_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(IAC_VENV)/bin/python -m pip install --quiet -r requirements-iac.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: install
	$(PY) -m devtools.demo

# tests/package renders the package's index.html in headless Chromium (Debian package `chromium`; we run as
# root). The package lists are refreshed only when the install fails without it.
CHROMIUM_STAMP := .local/chromium.installed

$(CHROMIUM_STAMP):
	test -x /usr/bin/chromium || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
		|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)
	mkdir -p $(@D)
	touch $@

test: install $(CHROMIUM_STAMP)
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(MAKE) --no-print-directory iac-check

# Every .bicep parses (pycep-parser) and checkov's Bicep scan reports no failed check (offline).
iac-check: install
	$(PY) -m scripts.check_bicep
	$(IAC_VENV)/bin/python -m scripts.check_bicep
	$(IAC_VENV)/bin/checkov --directory infra --framework bicep --skip-download --quiet --compact

fmt: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .local

# Schemathesis, long (>= 3,000 cases over examples, coverage, fuzzing and stateful; a few minutes): writes its
# figures to docs/security.md. `make test` runs a bounded run of the same phases (tests/security/test_openapi.py).
fuzz: install
	$(PY) -m pytest -p no:cacheprovider -q tests/security/long_fuzz.py

# Chaos soak (bounded; stops by itself): writes its figures to docs/reliability.md.
soak: install
	$(PY) -m devtools.soak

# Performance (about 20 minutes on 2 cores): writes docs/benchmarks.md and docs/benchmarks.png. Its tools
# (psutil, py-spy, pyinstrument) come from requirements-bench.txt, matplotlib from requirements-dev.txt (its
# chart test runs in `make test`); none is in the deployed requirements.txt.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(PY) -m pip install --quiet -r requirements-bench.txt
	touch $@

bench: $(STAMP) $(BENCH_STAMP) node_modules/.installed
	$(PY) -m devtools.bench
