# The course's commands. `make book` and `make test` are the two a newcomer needs (see README).
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: venv book book-clean test test-fast lint chromium axe bubblewrap postgres release benchmark mutants clean

# A virtual environment with cnnlab (editable) and every pinned dependency from pyproject.toml.
venv: $(STAMP)
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# Build the book, executing every chapter. Warnings and cell errors fail the build.
book: venv
	time $(VENV)/bin/jupyter-book build . --warningiserror --nitpick --keep-going

book-clean:
	rm -rf _build

# Debian's Chromium for the browser tests (installed when missing and we are root).
chromium:
	@bash tools/install-chromium.sh

# axe-core (npm, pinned in tools/install-axe.sh) for the browser tests' accessibility check.
axe:
	@bash tools/install-axe.sh

# Debian's bubblewrap, the sandbox each submission is graded in (installed when missing and we are root).
bubblewrap:
	@bash tools/install-bubblewrap.sh

# Debian's PostgreSQL 15 binaries for the gradebook tests (installed when missing and we are root).
postgres:
	@bash tools/install-postgres.sh

# The whole suite: lint, cnnlab, the nbgrader cycle, the built book in Chromium.
test: venv chromium axe bubblewrap postgres book
	$(PY) -m pytest

test-fast: venv bubblewrap postgres
	$(PY) -m pytest -m "not slow and not browser"

lint: venv
	$(VENV)/bin/ruff check .

# Mutation testing (pyproject's [tool.mutmut]: cnnlab/nn, cnnlab/shapes.py, grading/checks.py):
# prints every surviving mutant, a change to the code that no test notices. Slow (about 45 minutes
# on 2 cores with JOBS=2), so not part of `make test`. MUTANTS="cnnlab.shapes*" runs a subset.
MUTANTS ?=
JOBS    ?= 1
mutants: venv
	$(VENV)/bin/mutmut run --max-children $(JOBS) $(MUTANTS)
	@echo "Surviving mutants (inspect one: $(VENV)/bin/mutmut show NAME):"
	@$(VENV)/bin/mutmut results | grep -v ": not checked" || echo "    none"

# Regenerate the student notebooks exercises/<id>/ from the instructor notebooks solutions/<id>/
# (nbgrader generate_assignment --force, every assignment in one run; nbgrader needs .venv/bin on
# PATH for alembic). Its output is deterministic, so nothing needs normalising. Commit the result.
release: venv
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/nbgrader generate_assignment "*" --force --log-level=WARN

clean: book-clean
	rm -rf grading .pytest_cache .hypothesis mutants
