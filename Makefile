# The two commands a newcomer needs: `make preview` (the main job, no cloud, no CLI) and `make test`.
# Both bring .venv in line with uv.lock, with every dependency group; the Pulumi CLI itself installs only the
# program's runtime dependencies into the same .venv (see "Dependencies" in the README).
STACK ?= dev
PREVIEW_ARGS ?=  # more options for `python -m preview`, e.g. CI's --summary FILE
PY := .venv/bin/python
# The uv pinned in pyproject.toml ([tool.uv] required-version): the one on PATH when it is that version (CI's
# setup-uv), else a private copy installed from PyPI into .tools/ on first use.
UV_VERSION := $(shell sed -n 's/^required-version = "==\(.*\)"$$/\1/p' pyproject.toml)
UV ?= $(shell uv --version 2>/dev/null | grep -q '^uv $(UV_VERSION)\( \|$$\)' && command -v uv || echo .tools/bin/uv)
# checkov lives apart: it pins boto3 1.35, the runbook pins 1.44 (tests/security runs it as a command).
CHECKOV_VENV ?= .venv-checkov

.PHONY: preview test venv lock

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)

$(CHECKOV_VENV)/.installed: security_scan/requirements.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --disable-pip-version-check -r security_scan/requirements.txt
	touch $@

# A no-op check (~0.1 s) when .venv is current; pip-like bytecode compilation when something was installed.
venv: $(UV)
	@$(UV) sync --locked --all-groups --check -q 2>/dev/null || $(UV) sync --locked --all-groups --compile-bytecode -q

preview: venv
	$(PY) -m preview -s $(STACK) $(PREVIEW_ARGS)

test: venv $(CHECKOV_VENV)/.installed
	scripts/ensure-postgres
	$(PY) -m mypy
	$(PY) -m pytest -n auto

# After changing a pin in pyproject.toml: re-lock, and re-export the policy pack's own requirements from the lock.
lock: $(UV)
	$(UV) lock
	$(UV) export --only-group policy --no-emit-project --no-hashes -q -o policy/requirements.txt
