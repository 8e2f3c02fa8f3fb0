# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
B12 := .venv/bin/b12plan
TODAY := $(shell date +%F)
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: demo demo-data test lint typecheck unit chromium bench bench-all clean knowledge

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

# Bytecode is compiled at install (site-packages by uv, our editable sources by compileall), so
# a machine that never writes .pyc files (PYTHONDONTWRITEBYTECODE, a read-only checkout) still
# starts the CLI fast; so is the shipped knowledge base (validated once, read back by content
# hash; an edited file is parsed until `make knowledge` runs). See docs/decisions/0058-cli-start-up.md.
.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet --compile-bytecode
	env -u PYTHONPYCACHEPREFIX .venv/bin/python -m compileall -q src/b12plan
	.venv/bin/python -c 'from b12plan.knowledge import compile_knowledge; compile_knowledge()'
	touch $@

knowledge: .venv/.synced
	.venv/bin/python -c 'from b12plan.knowledge import compile_knowledge; compile_knowledge()'

# The main job on the embedded defaults (SQLite + DuckDB, demo data), then the web app.
demo: demo-data
	@echo
	@echo "Web app and API: http://127.0.0.1:8000/   (API docs at /docs; Ctrl-C to stop)"
	@echo "Sign in as dr.demo / demo-clinician (clinician), pat.demo / demo-patient (patient) or carer.demo / demo-carer-2026 (carer)."
	$(B12) serve --dev --host 127.0.0.1 --port 8000

demo-data: .venv/.synced
	$(B12) demo
	$(B12) db upgrade
	$(B12) seed-demo
	$(B12) reminders preview --as-of $(TODAY) --days 7
	$(B12) population generate --patients 5000 --seed 12 --out out/cohort
	$(B12) population run --engine duckdb --input out/cohort --as-of $(TODAY) --out out/worklist.parquet --show 10
	$(B12) population summary out/worklist.parquet
	$(B12) population from-store --out out/clinic --as-of $(TODAY)
	$(B12) population run --input out/clinic --as-of $(TODAY) --out out/clinic-worklist.parquet --show 10

lint: .venv/.synced
	.venv/bin/ruff check src tests benchmarks scripts
	.venv/bin/ruff format --check src tests benchmarks scripts

typecheck: .venv/.synced
	.venv/bin/mypy src

# Debian's chromium for the browser tests; outside CI a machine without it skips them loudly.
chromium:
	scripts/ensure-chromium.sh || [ -z "$$CI" ]

unit: .venv/.synced chromium
	.venv/bin/lint-imports
	.venv/bin/pytest

test: lint typecheck unit

bench: .venv/.synced
	.venv/bin/python benchmarks/core_speed.py
	.venv/bin/python benchmarks/cli_startup.py

bench-all: bench
	.venv/bin/python benchmarks/api_latency.py
	.venv/bin/python benchmarks/population.py
	.venv/bin/python benchmarks/store_export.py

clean:
	rm -rf .venv .tools .mypy_cache .pytest_cache .ruff_cache out
