"""The ``b12plan`` command line: thin wrappers that parse, call the core or a service, and render.

Heavy libraries (pydantic, Rich, icalendar, SQLAlchemy, duckdb, pyspark) are imported inside the
commands, so ``b12plan assess`` starts fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="b12plan",
    help="Plan, explain and monitor vitamin B12 injection therapy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Sub-command groups are registered below, one line each, by the module that owns them.
# (sub-apps)
from b12plan.cli.population import population_app  # noqa: E402

app.add_typer(population_app, name="population")
from b12plan.cli.core_commands import register_core_commands  # noqa: E402

register_core_commands(app)
from b12plan.cli.records import register_records_commands  # noqa: E402

register_records_commands(app)


def main() -> None:
    app()
