# The two commands that matter on a fresh machine (see README.md):
#   make demo   installs everything (Debian's Redmine, the Python package) and runs one sync
#               against a local Redmine with a demo project, printing the SLA state
#   make test   installs everything (Redmine, Bugzilla 5.2, Prism, the Trac example plugin) and
#               runs the whole test suite (what .ci/run does)
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install install-redmine install-bugzilla install-prism install-trac demo test lint bench

install:
	$(PIP) install -q -e ".[test,bench]"

install-redmine:
	bash .ci/install-redmine.sh

# a real Bugzilla 5.2 (the vendored upstream tarball, Debian's Perl, MariaDB, Apache/mod_perl)
# on 127.0.0.1:8090; idempotent, and it (re)starts the servers
install-bugzilla:
	bash .ci/install-bugzilla.sh

# Prism (npm) serving Atlassian's JIRA OpenAPI file, for the JIRA contract tests
install-prism:
	bash .ci/install-prism.sh

# the Trac example plugin (its own package, with Trac 1.6 from PyPI), for its tests
install-trac: install
	$(PIP) install -q -e "examples/trac-plugin[test]"

demo: install install-redmine
	bash examples/demo/run-demo.sh

test: install install-redmine install-bugzilla install-prism install-trac
	$(PYTHON) -m ruff check .
	$(PYTHON) -c "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"
	$(PYTHON) -m pytest -q -p no:cacheprovider

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -c "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"

bench: install
	$(PYTHON) benchmarks/core_bench.py
