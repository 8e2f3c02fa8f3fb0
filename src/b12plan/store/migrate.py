"""Schema migrations, run from Python with the migrations shipped inside the package."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from b12plan.store.database import make_engine

SCRIPT_LOCATION = "b12plan.store:migrations"


def alembic_config() -> Config:
    """An Alembic config that needs no ``alembic.ini``: the scripts live in the package."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def upgrade(url_or_engine: str | Engine, revision: str = "head") -> str | None:
    """Bring the database to ``revision`` (default: the latest); returns the revision reached."""
    engine, owned = _engine(url_or_engine)
    try:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        return current_revision(engine)
    finally:
        if owned:
            engine.dispose()


def current_revision(url_or_engine: str | Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    engine, owned = _engine(url_or_engine)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        if owned:
            engine.dispose()


def head_revision() -> str | None:
    """The latest revision shipped with this version of b12plan."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _engine(url_or_engine: str | Engine) -> tuple[Engine, bool]:
    if isinstance(url_or_engine, str):
        return make_engine(url_or_engine), True
    return url_or_engine, False
