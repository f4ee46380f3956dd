# The two commands that matter on a fresh machine (see README.md):
#   make demo   installs everything (Debian's Redmine, the Python package) and runs one sync
#               against a local Redmine with a demo project, printing the SLA state
#   make test   installs everything (Redmine, Bugzilla 5.2, Prism, Chromium, the Trac example
#               plugin) and runs the whole test suite (what .ci/run does)
#
# Python: everything goes into a virtual environment in the repo, .venv (made by `make install`
# with the machine's python3, pip upgraded in it), never into the system Python. Every recipe
# below runs with .venv/bin first on PATH, so `python`, `pip`, `tracker-bridge` and the tests'
# shutil.which("tracker-bridge") are the venv's. By hand: `. .venv/bin/activate`.
BASE_PYTHON ?= python3
VENV := $(CURDIR)/.venv
PYTHON := $(VENV)/bin/python
PIP := $(PYTHON) -m pip
export PATH := $(VENV)/bin:$(PATH)
export VIRTUAL_ENV := $(VENV)
export PYTHON

.PHONY: install install-redmine install-bugzilla install-prism install-chromium install-postgresql install-trac \
	demo test lint bench

# The venv, once. A Debian python3 without its venv module (python3-venv) leaves a half-made
# .venv with no pip: that one is thrown away, python3-venv installed (as root), and made again.
$(VENV)/bin/pip:
	@if ! "$(BASE_PYTHON)" -m venv "$(VENV)"; then \
	    rm -rf "$(VENV)"; \
	    if [ "$$(id -u)" -ne 0 ]; then \
	        echo "make install: '$(BASE_PYTHON) -m venv' failed; install python3-venv (sudo apt-get install python3-venv) and run it again" >&2; \
	        exit 1; \
	    fi; \
	    echo "[install] $(BASE_PYTHON) -m venv failed: installing Debian's python3-venv"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null; \
	    "$(BASE_PYTHON)" -m venv "$(VENV)"; \
	fi
	$(PIP) install -q --upgrade pip

# the package (editable) with its test and bench extras; again only when pyproject.toml changed
install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/pip
	$(PIP) install -q -e ".[test,bench]"
	touch "$@"

install-redmine:
	bash .ci/install-redmine.sh

# a real Bugzilla 5.2 (the vendored upstream tarball, Debian's Perl, MariaDB, Apache/mod_perl)
# on 127.0.0.1:8090; idempotent, and it (re)starts the servers
install-bugzilla:
	bash .ci/install-bugzilla.sh

# Prism (npm) serving Atlassian's JIRA OpenAPI file, for the JIRA contract tests
install-prism:
	bash .ci/install-prism.sh

# Debian's Chromium for the browser tests (driven by the venv's playwright)
install-chromium: ; bash .ci/install-chromium.sh

# Debian's PostgreSQL (the tests start a private cluster of their own on a free port)
install-postgresql: ; bash .ci/install-postgresql.sh

# the Trac example plugin (its own package, with Trac 1.6 from PyPI), for its tests
install-trac: install
	$(PIP) install -q -e "examples/trac-plugin[test]"

# run-demo.sh installs Redmine itself (once), so it is not a prerequisite here
demo: install
	bash examples/demo/run-demo.sh

test: install install-redmine install-bugzilla install-prism install-chromium install-postgresql install-trac
	$(PYTHON) -m ruff check .
	$(PYTHON) -c "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"
	$(PYTHON) -m pytest -q -p no:cacheprovider

lint: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -c "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"

bench: install
	$(PYTHON) benchmarks/core_bench.py
