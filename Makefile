# The two commands a newcomer needs: `make preview` (the main job, no cloud, no CLI) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev
# checkov lives apart: it pins boto3 1.35, the runbook pins 1.44 (tests/security runs it as a command).
CHECKOV_VENV ?= .venv-checkov

.PHONY: preview test

$(VENV)/.installed: requirements.txt policy/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt -r policy/requirements.txt
	touch $@

$(CHECKOV_VENV)/.installed: security_scan/requirements.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --disable-pip-version-check -r security_scan/requirements.txt
	touch $@

preview: $(VENV)/.installed
	$(PY) -m preview -s $(STACK)

test: $(VENV)/.installed $(CHECKOV_VENV)/.installed
	scripts/ensure-postgres
	$(PY) -m mypy
	$(PY) -m pytest
