"""The ``b12plan`` command line: thin wrappers that parse, call the core or a service, and render.

Start-up is part of the interface: ``b12plan assess`` runs in scripts, once per case. So
``main`` first offers the arguments to ``b12plan.cli.steps.run_assess_argv``, which runs
``assess`` in its plain documented forms without importing Typer; everything else (every other
command, ``--help``, mistakes) goes to the Typer app, built on first use (``app`` below). Heavy
libraries (pydantic, Rich, icalendar, SQLAlchemy, duckdb, pyspark) are imported inside the
commands. Help is plain text (``rich_markup_mode=None``) for the same reason.
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer


@functools.cache
def _typer_app() -> typer.Typer:
    import typer

    from b12plan.cli.core_commands import register_core_commands
    from b12plan.cli.population import population_app
    from b12plan.cli.records import register_records_commands
    from b12plan.cli.reminders import carers_app, reminders_app
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
    app.add_typer(reminders_app, name="reminders")
    app.add_typer(carers_app, name="carers")
    return app


def __getattr__(name: str) -> Any:
    """``b12plan.cli.app``: the Typer app, built when first asked for (tests, ``main``)."""
    if name == "app":
        return _typer_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    from b12plan.cli.steps import run_assess_argv

    code = run_assess_argv(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    _typer_app()()
