"""Alembic, driven from code: the CLI, `make run` and the tests all upgrade the same way.

The scripts live in the repository's top-level `migrations/`, installed as the package
`contactcenter_migrations` (pyproject.toml maps it; a bare `migrations` package would clash with
anyone's), and are found through it, so an installed copy needs no checkout and no alembic.ini.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_PACKAGE = "contactcenter_migrations"

# Read by migrations/env.py: apply app/core/definitions.py's files when the run ends at head.
APPLY_DEFINITIONS = "apply_definitions"


def scripts() -> Path:
    """The folder of env.py and versions/, wherever the package was installed."""
    return Path(str(files(MIGRATIONS_PACKAGE)))


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(scripts()))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate up to `revision`; reaching head (or being there), also reapply the definitions."""
    config = alembic_config(database_url)
    config.attributes[APPLY_DEFINITIONS] = True
    command.upgrade(config, revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Raise if the models and the migrations disagree (alembic check)."""
    command.check(alembic_config(database_url))
