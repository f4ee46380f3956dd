# The two commands that matter on a fresh machine (see README.md):
#   make demo   installs everything (Debian's Redmine, the Python package) and runs one sync
#               against a local Redmine with a demo project, printing the SLA state
#   make test   installs everything and runs the whole test suite (what .ci/run does)
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install install-redmine demo test lint bench

install:
	$(PIP) install -q -e ".[test,bench]"

install-redmine:
	bash .ci/install-redmine.sh

demo: install install-redmine
	bash examples/demo/run-demo.sh

test: install install-redmine
	$(PYTHON) -m ruff check .
	$(PYTHON) -c "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"
	$(PYTHON) -m pytest -q -p no:cacheprovider

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -c "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"

bench: install
	$(PYTHON) benchmarks/core_bench.py
