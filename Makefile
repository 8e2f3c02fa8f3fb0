# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: demo test lint typecheck unit bench clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	touch $@

demo: .venv/.synced
	.venv/bin/b12plan demo

lint: .venv/.synced
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks

typecheck: .venv/.synced
	.venv/bin/mypy src

unit: .venv/.synced
	.venv/bin/lint-imports
	.venv/bin/pytest

test: lint typecheck unit

bench: .venv/.synced
	.venv/bin/python benchmarks/core_speed.py

clean:
	rm -rf .venv .tools .mypy_cache .pytest_cache .ruff_cache
