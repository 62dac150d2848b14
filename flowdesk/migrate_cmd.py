"""`flowdesk migrate`: deploy the project's entities to the CRM database.

    flowdesk migrate flows schemas                      # the project's database (.flowdesk/flowdesk.db)
    flowdesk migrate schemas --db postgresql://... --dry-run
    flowdesk migrate schemas --allow-loss               # drop fields, keeping their values in a backup

The CRM and the call log share one database: --db, then FLOWDESK_DB, then the project's SQLite file.
"""
from __future__ import annotations

import sys

EXIT_OK, EXIT_ERRORS = 0, 1


def cmd_migrate(args) -> int:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from compiler import compile_project
    from dsl.diagnostics import summary
    from flowdesk.cli import _print_diagnostics
    from flowdesk.config import load_config
    from runtime.crm.migrate import MigrationRefused, migrate
    from runtime.storage import open_engine

    config = load_config(args.paths, args.db, args.env)
    result = compile_project(args.paths, environment=config.environment)
    _print_diagnostics(result.diagnostics, result.sources.text_of)
    if result.bundle is None or result.errors:
        print(f"not migrated: {summary(result.diagnostics)}", file=sys.stderr)
        return EXIT_ERRORS
    where = make_url(config.database_url).render_as_string(hide_password=True)
    engine = None
    try:
        engine = open_engine(config.database_url)
        report = migrate(engine, result.bundle, allow_loss=args.allow_loss, dry_run=args.dry_run)
    except MigrationRefused as refused:
        for message in refused.messages:
            print(f"refused: {message}", file=sys.stderr)
        print(f"not migrated: nothing in {where} was changed", file=sys.stderr)
        return EXIT_ERRORS
    except SQLAlchemyError as error:
        print(f"error: the database {where} failed: {_first_line(error)}; nothing was changed", file=sys.stderr)
        return EXIT_ERRORS
    finally:
        if engine is not None:
            engine.dispose()
    print(_told(report, where))
    return EXIT_OK


def _told(report, where: str) -> str:
    """The report in plain words: each change on its line, then what happened."""
    if not report.changes:
        return f"nothing to change: {where} is at version {report.version}"
    lines = [f"  {change}" for change in report.changes]
    lines += [f"  backup: {name}" for name in report.backups]
    if report.dry_run:
        lines.append(f"dry run: {where} would go to version {report.version}; nothing was changed")
    else:
        lines.append(f"migrated {where} to version {report.version}")
    return "\n".join(lines)


def _first_line(error: Exception) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def add_parser(sub, env_option, db_option) -> None:
    p = sub.add_parser("migrate", help="create or change the CRM's tables to match the project's entities")
    p.add_argument("paths", nargs="+", metavar="PATH", help="the project's flow and schema files or folders")
    p.add_argument("--allow-loss", dest="allow_loss", action="store_true",
                   help="apply changes that drop data (fields, entities, choices); the old values are kept "
                        "in backup tables crm_backup_<version>_<table>")
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="say what would change, including the checks on the data, and change nothing")
    env_option(p)
    db_option(p)
    p.set_defaults(run=cmd_migrate)
