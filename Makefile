# The two commands a newcomer needs: `make preview` (the main job, no cloud, no CLI) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev

.PHONY: preview test

$(VENV)/.installed: requirements.txt policy/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt -r policy/requirements.txt
	touch $@

preview: $(VENV)/.installed
	$(PY) -m preview -s $(STACK)

test: $(VENV)/.installed
	scripts/ensure-postgres
	$(PY) -m mypy
	$(PY) -m pytest
