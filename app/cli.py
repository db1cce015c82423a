"""`contactcenter`: serve, migrate, load the demo, create users, plan staff."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import math
import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from pydantic import ValidationError

from app.core.db import explain_database_error
from app.core.embedded import EmbeddedPostgres
from app.core.errors import AppError
from app.core.logging import configure_logging, get_logger
from app.core.settings import Settings, explain, get_settings
from app.workforce import simulate_command, staffing
from app.workforce.erlang import Demand, TooManyAgents

log = get_logger("app.cli")


class Mistake(Exception):
    """Something the person at the command line can fix, said in one line (exit 1)."""


def resolve_database(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """DATABASE_URL when given; otherwise the embedded server in the data folder, started now."""
    if settings.database_url:
        return settings.database_url, None
    embedded = EmbeddedPostgres(settings.embedded_pgdata)
    return embedded.ensure_database(), embedded


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from app.supervisor import metrics_files

    # Before anything imports Prometheus's client, which picks then where values are kept:
    # with several workers, in files of a folder they share (docs/deployment.md, "Metrics").
    workers = args.workers or settings.workers
    metrics_files.prepare(settings.data_dir, workers)

    import uvicorn

    from app.core import migrate
    from app.core.collector import tune_for_serving
    from app.main import create_app

    # uvicorn shuts down on SIGTERM, then raises the signal again with the handler that was in
    # place before it started: make that one an ordinary exit, so the embedded server stops too.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    url, embedded = resolve_database(settings)
    try:
        migrate.upgrade(url)
        if settings.demo_at_first_start and not args.no_demo:
            asyncio.run(_load_demo_if_empty(settings, url))
        elif settings.environment == "production" and not args.no_demo:
            log.info("no demo in production unless CC_LOAD_DEMO=true or `contactcenter demo`")
        host = args.host or settings.host
        port = args.port or settings.port
        log.info(
            "serving",
            url=f"http://{host}:{port}",
            docs=f"http://{host}:{port}/docs",
            workers=workers,
        )
        if workers == 1:
            app = create_app(settings, url)
            tune_for_serving()
            uvicorn.run(app, host=host, port=port, log_config=None)
        else:
            # Each worker builds its app from the environment: hand it the database resolved here.
            os.environ["DATABASE_URL"] = url
            uvicorn.run(
                "app.main:app_from_environment",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_config=None,
            )
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


async def _load_demo_if_empty(settings: Settings, url: str, *, force: bool = False) -> bool:
    from app import demo
    from app.auth import service as users
    from app.core.db import create_engine, create_sessionmaker, unit_of_work

    engine = create_engine(settings, url)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            if await demo.demo_present(session):
                log.info("demo data already present")
                return False
            if not force and await users.count_users(session) > 0:
                return False
            passwords = await demo.load_demo(session, settings)
        demo.log_passwords(passwords)
        return True
    finally:
        await engine.dispose()


def _db(args: argparse.Namespace, settings: Settings) -> int:
    from app.core import migrate

    url, _embedded = resolve_database(settings)
    if args.action == "upgrade":
        migrate.upgrade(url, args.revision or "head")
    elif args.action == "downgrade":
        migrate.downgrade(url, args.revision)
    else:
        migrate.check(url)
    log.info("database ready", action=args.action)
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from app.core import migrate

    url, _ = resolve_database(settings)
    migrate.upgrade(url)
    loaded = asyncio.run(_load_demo_if_empty(settings, url, force=True))
    print("demo loaded" if loaded else "demo already present")
    return 0


def _create_user(args: argparse.Namespace, settings: Settings) -> int:
    from app.core import migrate

    password = _password_of(args)  # asked first: the migration may take a while
    url, _ = resolve_database(settings)
    migrate.upgrade(url)
    try:
        generated = asyncio.run(_insert_user(settings, url, args, password))
    except ValidationError as error:  # its text would quote the password: name the fields
        raise Mistake(_problems(error)) from None
    print(f"created {args.role} {args.username!r}")
    if generated:
        print(f"password (shown once): {generated}")
    return 0


def _password_of(args: argparse.Namespace) -> str | None:
    """The new user's password: one line of standard input (--password-stdin), else asked for
    on a terminal; None (a generated one, printed once) when left empty or not on a terminal.
    Never an argument: those stay in shell histories and show in `ps`."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise Mistake("--password-stdin read no password: send it on standard input")
        return password
    if not sys.stdin.isatty():
        return None
    password = getpass.getpass("Password (leave empty to generate one): ")
    if password and getpass.getpass("The same again: ") != password:
        raise Mistake("the two passwords differ: nothing was created")
    return password or None


def _problems(error: ValidationError) -> str:
    """What is wrong with the input, by field, without the values."""
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
        for problem in error.errors(include_url=False, include_input=False)
    )


async def _insert_user(
    settings: Settings, url: str, args: argparse.Namespace, password: str | None
) -> str | None:
    from app.agents import service as agents
    from app.agents.schemas import AgentCreate
    from app.auth import service as users
    from app.auth.models import Role
    from app.auth.schemas import UserCreate
    from app.core.db import create_engine, create_sessionmaker, unit_of_work
    from app.core.events import SYSTEM_ACTOR

    engine = create_engine(settings, url)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            if args.role == Role.agent.value:
                body = AgentCreate(
                    username=args.username, display_name=args.display_name, password=password
                )
                _, generated = await agents.create_agent(session, body, actor=SYSTEM_ACTOR)
                return generated
            user_body = UserCreate(
                username=args.username,
                display_name=args.display_name,
                role=Role(args.role),
                password=password,
            )
            _, generated = await users.create_user(session, user_body, actor=SYSTEM_ACTOR)
            return generated
    finally:
        await engine.dispose()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contactcenter",
        description="The contact-center backend. Without DATABASE_URL, an embedded PostgreSQL "
        "is started in the data folder (CC_DATA_DIR, default ./.data).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="migrate the database, then serve the API")
    serve.add_argument("--host", help="address to listen on (default CC_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default CC_PORT or 8000)")
    serve.add_argument("--no-demo", action="store_true", help="do not load the demo on first start")
    serve.add_argument(
        "--workers", type=int, help="server processes sharing the port (default CC_WORKERS or 1)"
    )
    serve.set_defaults(handler=_serve)

    db = commands.add_parser("db", help="database migrations")
    db_actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = db_actions.add_parser("upgrade", help="migrate to a revision (default: head)")
    up.add_argument("revision", nargs="?", default="head")
    down = db_actions.add_parser("downgrade", help="migrate back to a revision ('base' for none)")
    down.add_argument("revision")
    db_actions.add_parser("check", help="fail if the models and the migrations disagree")
    db.set_defaults(handler=_db)

    demo = commands.add_parser("demo", help="load the demo contact center (prints its passwords)")
    demo.set_defaults(handler=_demo)

    create_user = commands.add_parser("create-user", help="create a user (agents get a profile)")
    create_user.add_argument("username")
    create_user.add_argument("--role", choices=["admin", "supervisor", "agent"], default="admin")
    create_user.add_argument("--display-name", help="defaults to the username")
    create_user.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (one line), as `docker login` does;"
        " without it the password is asked for on a terminal, or else generated and printed once",
    )
    # Refused with a pointer to the ways above (main), not merely unknown.
    create_user.add_argument("--password", help=argparse.SUPPRESS)
    create_user.set_defaults(handler=_create_user)
    _add_staffing(commands)

    simulate = commands.add_parser(
        "simulate",
        help="what-if runs of the routing policy: calls, agents and tier weights in, SL, ASA, "
        "abandonment and occupancy out, per tier (docs/staffing.md)",
    )
    simulate_command.add_arguments(simulate)
    return parser


def _add_staffing(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plan = commands.add_parser(
        "staffing",
        help="the agents a forecast of calls needs (Erlang C; Erlang A with --patience)",
        description="The fewest agents that answer the share --sl of the calls within --target"
        " seconds, with the service level, ASA, occupancy and abandonment of a few counts"
        " around it (docs/staffing.md).",
    )
    plan.add_argument(
        "--calls",
        required=True,
        type=_number(staffing.LEAST_CALLS, staffing.MOST_CALLS),
        help="calls forecast in the interval",
    )
    plan.add_argument(
        "--interval",
        default=1800.0,
        type=_number(staffing.SHORTEST_INTERVAL_S, staffing.LONGEST_INTERVAL_S),
        help="the interval's length in seconds (default 1800)",
    )
    plan.add_argument(
        "--aht",
        required=True,
        type=_number(staffing.SHORTEST_AHT_S, staffing.LONGEST_AHT_S),
        help="average handle time in seconds (talk and wrap-up)",
    )
    plan.add_argument(
        "--target",
        required=True,
        type=_number(0, staffing.LONGEST_TARGET_S),
        help="the service level's answer time in seconds",
    )
    plan.add_argument(
        "--sl",
        required=True,
        type=_number(0, 1, above=True, below=True),
        help="the share to answer within --target, between 0 and 1 (0.8)",
    )
    plan.add_argument(
        "--patience",
        type=_number(staffing.SHORTEST_PATIENCE_S, staffing.LONGEST_PATIENCE_S),
        help="the callers' mean patience in seconds: Erlang A (without it, Erlang C)",
    )
    plan.add_argument(
        "--max-abandon",
        type=_number(0, 1, above=True, below=True),
        help="with --patience: the most callers who may hang up, between 0 and 1",
    )
    plan.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _number(
    low: float, high: float, *, above: bool = False, below: bool = False
) -> Callable[[str], float]:
    """An option's parser: a finite number in [low, high] (or the open ends asked), refused by
    argparse (exit 2, naming the option) otherwise."""
    ends = f"{'above' if above else 'at least'} {_plain(low)} and {'below' if below else 'at most'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        fits = (value > low if above else value >= low) and (
            value < high if below else value <= high
        )
        if not (math.isfinite(value) and fits):
            raise argparse.ArgumentTypeError(f"must be {ends} {_plain(high)}, not {text}")
        return value

    return parse


def _plain(bound: float) -> str:
    """A bound as a person writes it: 1,000,000, 0.5."""
    return f"{bound:,.0f}" if bound == int(bound) else f"{bound:g}"


def _staffing(args: argparse.Namespace) -> int:
    """`contactcenter staffing`: arithmetic only, no settings and no database."""
    if args.max_abandon is not None and args.patience is None:
        print("error: argument --max-abandon: needs --patience (Erlang A)", file=sys.stderr)
        return 2
    demand = Demand(args.calls, args.interval, args.aht, args.target, args.patience)
    try:
        plan = staffing.plan_staffing(demand, args.sl, max_abandon=args.max_abandon)
    except TooManyAgents as error:
        return _refuse(str(error))
    print(json.dumps(staffing.plan_json(plan)) if args.json else staffing.plan_table(plan))
    return 0


NOT_ON_THE_COMMAND_LINE = (
    "--password is not taken: a password on the command line stays in the shell's history and"
    ' shows in `ps`. Pipe it in with --password-stdin (printf %s "$PW" | contactcenter'
    " create-user NAME --password-stdin), or leave it out to be asked for it"
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "staffing":
        return _staffing(args)
    if args.command == "simulate":  # arithmetic too: no settings, no database
        return simulate_command.run(args)
    if getattr(args, "password", None) is not None:
        print(f"error: {NOT_ON_THE_COMMAND_LINE}", file=sys.stderr)
        return 2  # as argparse's other refusals
    if getattr(args, "display_name", "unset") is None:
        args.display_name = args.username
    try:
        settings = get_settings()
    except ValidationError as error:
        return _refuse(explain(error))
    configure_logging(settings.log_level, as_json=settings.log_json)
    return _run(args, settings)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    """The command; what the person running it can fix ends in one line on stderr and exit 1,
    with no traceback (and no password: the URL's is masked)."""
    try:
        code: int = args.handler(args, settings)
    except (AppError, Mistake) as error:
        return _refuse(error.detail if isinstance(error, AppError) else str(error))
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        explained = explain_database_error(error, settings.database_url)
        if explained is None:
            raise
        return _refuse(explained)
    return code


def _refuse(problem: str) -> int:
    print(f"error: {problem}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
