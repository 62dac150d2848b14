"""`flowdesk publish`: make the project's files the live version, as the studio's 发布 page does.

    flowdesk publish                                   # the project here, its database
    flowdesk publish . --db postgresql://... --by ci --note "release 2026-11-23"
    flowdesk publish --diff                            # print each changed file's diff too
    flowdesk publish --rollback                        # back to the version live before this one
    flowdesk publish --rollback 3                      # back to version 3

The same checks as the studio (studio.release): the project compiles without errors, the database's
migration loses no data, every flow test (flows/*.test.yaml) passes, and something changed.  Any
failure prints why and exits 1, changing nothing.  A studio already running on the database keeps
the version it runs until it is restarted (or a version is published from its own page).
"""
from __future__ import annotations

import getpass
import sys

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def cmd_publish(args) -> int:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from flowdesk.config import load_config
    from runtime.storage import open_engine
    from studio import release

    config = load_config([args.path], args.db, args.env)
    project = config.project
    if not (project / "flows").is_dir() and not (project / "schemas").is_dir():
        print(f"error: {project} has no flows/ or schemas/ folder; give the project's folder", file=sys.stderr)
        return EXIT_USAGE
    where = make_url(config.database_url).render_as_string(hide_password=True)
    engine = open_engine(config.database_url)
    try:
        if args.rollback is not None:
            return _roll_back(engine, args, where)
        candidate = release.check(project, engine, config.environment)
        _report(candidate, show_diff=args.diff)
        number = release.publish(engine, candidate, by=args.by, at=_now(), note=args.note or "")
    except release.PublishRefused as refused:
        for reason in refused.reasons:
            print(f"refused: {reason}", file=sys.stderr)
        print(f"not published: nothing in {where} was changed", file=sys.stderr)
        return EXIT_ERRORS
    except SQLAlchemyError as error:
        print(f"error: the database {where} failed: {str(getattr(error, 'orig', error)).strip().splitlines()[0]}",
              file=sys.stderr)
        return EXIT_ERRORS
    finally:
        engine.dispose()
    print(f"published version {number} to {where}; it is live")
    return EXIT_OK


def _roll_back(engine, args, where: str) -> int:
    from runtime import versions
    from studio import release

    versions.create_tables(engine)
    number = args.rollback
    if number == 0:
        previous = versions.previous(engine)
        if previous is None:
            raise release.PublishRefused(["no version was live before the live one; give the number to roll back to"])
        number = previous.number
    release.roll_back(engine, number, by=args.by, at=_now())
    print(f"rolled back {where} to version {number}; it is live")
    return EXIT_OK


def _report(candidate, *, show_diff: bool) -> None:
    """What the candidate changes, in the order the studio's page shows it."""
    live = candidate.live
    print(f"live version: {live.number} ({live.published_by})" if live else "live version: none yet")
    for text in candidate.errors:
        print(text, file=sys.stderr)
    for change in candidate.files:
        print(f"  {change.status_title} {change.path}")
        if show_diff:
            sys.stdout.write(change.diff)
    for change in candidate.changes:
        print(f"  {change.text}")
    for change in candidate.migration:
        print(f"  database: {change}")
    failed = candidate.failed_tests
    if candidate.tests:
        print(f"flow tests: {len(candidate.tests) - len(failed)} passed, {len(failed)} failed")
    for test in failed:
        print(f"FAILED {test.path}::{test.name}\n{test.message}", file=sys.stderr)


def _now():
    from runtime.times import utcnow

    return utcnow()


def add_parser(sub, env_option, db_option) -> None:
    p = sub.add_parser("publish", help="check the project and make it the live version, or roll back")
    p.add_argument("path", nargs="?", default=".", metavar="PATH", help="the project's folder (default: here)")
    p.add_argument("--by", default=_user(), help="who publishes, kept with the version (default: the login name)")
    p.add_argument("--note", help="what this version changes, kept with it")
    p.add_argument("--diff", action="store_true", help="print each changed file's difference from the live version")
    p.add_argument("--rollback", nargs="?", type=int, const=0, default=None, metavar="N",
                   help="make version N live again (default: the version live before this one)")
    env_option(p)
    db_option(p)
    p.set_defaults(run=cmd_publish)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"

