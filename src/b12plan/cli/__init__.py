"""The ``b12plan`` command line: thin wrappers that parse, call the core or a service, and render.

Heavy libraries (pydantic, Rich, icalendar, SQLAlchemy, duckdb, pyspark) are imported inside the
commands, so ``b12plan assess`` starts fast. Help is plain text (``rich_markup_mode=None``) for
the same reason.
"""

from __future__ import annotations

import typer

from b12plan.cli.core_commands import register_core_commands
from b12plan.cli.population import population_app
from b12plan.cli.records import register_records_commands
from b12plan.cli.security import register_security_commands

app = typer.Typer(
    name="b12plan",
    help="Plan, explain and monitor vitamin B12 injection therapy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
register_core_commands(app)
register_records_commands(app)
register_security_commands(app)
app.add_typer(population_app, name="population")


def main() -> None:
    app()
