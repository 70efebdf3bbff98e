# The portal's developer commands. On a fresh machine `make demo` and `make test` are all it takes:
# both create the virtual environment in .venv (or reuse it) and install what they need.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# pytest-xdist processes for `make test` ("auto": one per CPU core; `make test WORKERS=0` runs serially).
WORKERS ?= auto
BENCH_DATABASE_URL ?= $(if $(DATABASE_URL),$(DATABASE_URL),postgres://postgres@127.0.0.1:5432/portal)

# Developer commands (not production) run with DEBUG on, so they need no secret key.
DEV := DJANGO_DEBUG=1
# The demo is the embedded default whatever the shell exports: SQLite and local files under
# data/, tasks in-process, e-mail to the console.
DEMO := env DJANGO_DEBUG=1 DATABASE_URL= CELERY_BROKER_URL= CELERY_RESULT_BACKEND= CACHE_URL= \
	PORTAL_STORAGE=local DJANGO_EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend
# compilemessages walks the whole tree: keep it out of the virtualenv, data and caches.
I18N_IGNORE := --ignore='.*' --ignore=data --ignore=staticfiles --ignore=node_modules
MAKEMESSAGES_IGNORE := --ignore=.venv --ignore=data --ignore=staticfiles --ignore=node_modules \
	--ignore=tests --ignore=bench --ignore=fixtures

.PHONY: help demo test bench lint messages compilemessages _compilemessages-if-possible

help:
	@echo "make demo             set up and serve the demo portal at http://$(HOST):$(PORT)"
	@echo "make test             install the test tools and run the whole test suite, in parallel (WORKERS=auto)"
	@echo "make lint             ruff, the import contract (the apps' layers), and a check that no migration is missing"
	@echo "make bench            audit-log, linkage, download and anonymisation benchmarks (PostgreSQL; DATABASE_URL or BENCH_DATABASE_URL)"
	@echo "make messages         update the Japanese message catalogue from the source"
	@echo "make compilemessages  compile the message catalogues (needs gettext's msgfmt)"

# --- The virtual environment -----------------------------------------------------------------
$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstalled whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed

# --- The two commands ------------------------------------------------------------------------
demo: $(VENV)/.installed
	@$(MAKE) --no-print-directory _compilemessages-if-possible
	$(DEMO) $(PY) manage.py migrate --no-input
	@# The demo's own e-mails (review assignments, decisions) and the log line of each in-process
	@# mail task would bury the list of accounts.
	$(DEMO) DJANGO_EMAIL_BACKEND=django.core.mail.backends.dummy.EmailBackend DJANGO_LOG_LEVEL=WARNING \
		$(PY) manage.py seed_demo
	@echo "Serving the demo portal at http://$(HOST):$(PORT)/ (Ctrl-C stops it)"
	$(DEMO) $(PY) manage.py runserver $(HOST):$(PORT)

# PostgreSQL and Redis are used when DATABASE_URL / CELERY_BROKER_URL are set, SQLite otherwise.
# In parallel, each worker with its own test database (test_<name>_gw0, …); the 20 slowest printed.
test: $(VENV)/.installed-test
	@$(MAKE) --no-print-directory _compilemessages-if-possible
	$(PY) -m pytest -n $(WORKERS) --durations=20 $(PYTEST_ARGS)

# --- Other commands --------------------------------------------------------------------------
bench: $(VENV)/.installed-test
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/audit_append.py
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/audit_verify_1m.py
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/linkage_1m.py
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/download_1g.py
	$(PY) bench/deid_2000.py
	$(PY) bench/ai_inference.py

lint: $(VENV)/.installed-test
	$(PY) -m ruff check .
	@# The apps' layers and the plain-Python anonymiser ([tool.importlinter] in pyproject.toml).
	$(VENV)/bin/lint-imports --no-cache
	$(DEV) $(PY) manage.py makemigrations --check --dry-run

messages: $(VENV)/.installed
	$(DEV) $(PY) manage.py makemessages -l ja --no-location --no-obsolete $(MAKEMESSAGES_IGNORE)

compilemessages: $(VENV)/.installed
	$(DEV) $(PY) manage.py compilemessages $(I18N_IGNORE)

# The demo and the tests compile the catalogues when gettext is there, and say so when it is not.
_compilemessages-if-possible: $(VENV)/.installed
	@if command -v msgfmt >/dev/null 2>&1; then \
		$(DEV) $(PY) manage.py compilemessages $(I18N_IGNORE); \
	else \
		echo "msgfmt not found (Debian: apt-get install gettext): using the compiled catalogues as they are"; \
	fi
