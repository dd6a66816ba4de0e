"""The `elevate` command: services, roles, migrations, admins, the demo and benchmarks."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys

from elevate.logs import configure_logging
from elevate.settings import get_settings

log = logging.getLogger("elevate")


def _services(args: argparse.Namespace) -> int:
    from elevate import services

    settings = get_settings()
    if args.action == "up":
        services.ensure_prerequisites(settings)
        services.up(settings)
    elif args.action == "down":
        services.down(settings)
    for name, state in services.status(settings).items():
        print(f"{name:<11} {state}")
    return 0


def _setup(args: argparse.Namespace) -> int:
    from elevate import services

    settings = get_settings()
    services.ensure_prerequisites(settings)
    services.up(settings)
    from sinks.migrations import apply_migrations

    apply_migrations(settings.postgres_dsn)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from sinks.migrations import apply_migrations

    applied = apply_migrations(get_settings().postgres_dsn)
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def _create_admin(args: argparse.Namespace) -> int:
    from api.admins import create_admin

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else args.password
    if not password:
        password = getpass.getpass("password: ")
    create_admin(get_settings().postgres_dsn, args.username, password, args.role)
    print(f"admin {args.username!r} ({args.role}) is ready")
    return 0


def _run(args: argparse.Namespace) -> int:
    from elevate import roles

    settings = get_settings()
    wanted = list(args.roles)
    if wanted == ["all"]:
        return roles.supervise(settings, roles.process_groups(settings))
    unknown = [r for r in wanted if r not in roles.ROLES]
    if unknown:
        print(f"unknown role(s) {unknown}; choose from {', '.join(roles.ROLES)} or all")
        return 2
    if "streams" in wanted:
        if len(wanted) > 1:
            print("streams runs in a process of its own")
            return 2
        roles.run_streams(settings)
        return 0
    import uvloop

    uvloop.run(roles.run_async_roles(settings, wanted))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from elevate.demo.run import run_demo

    return run_demo(
        candidates=args.candidates,
        duration_seconds=args.duration_seconds,
        as_json=args.json,
    )


def _bench(args: argparse.Namespace) -> int:
    if args.target == "sandbox":
        from elevate.bench.sandbox import run_sandbox_bench

        return run_sandbox_bench(args.runs, args.parallel)
    if args.target == "ingest":
        from elevate.bench.ingest import run_ingest_bench

        return asyncio.run(
            run_ingest_bench(
                seconds=args.seconds, concurrency=args.concurrency, workers=args.workers
            )
        )
    return 2


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="elevate", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    s = sub.add_parser("setup", help="install what is missing, start services, migrate")
    s.set_defaults(func=_setup)

    s = sub.add_parser("services", help="start, stop or show the local services")
    s.add_argument("action", choices=["up", "down", "status"])
    s.set_defaults(func=_services)

    s = sub.add_parser("migrate", help="apply the Postgres migrations")
    s.set_defaults(func=_migrate)

    s = sub.add_parser("create-admin", help="create or update an admin or grader account")
    s.add_argument("--username", required=True)
    s.add_argument("--password", help="prefer --password-stdin or the prompt")
    s.add_argument("--password-stdin", action="store_true")
    s.add_argument("--role", choices=["admin", "grader"], default="admin")
    s.set_defaults(func=_create_admin)

    s = sub.add_parser(
        "run", help="run pipeline roles: ingest api streams sink-postgres sink-clickhouse, or all"
    )
    s.add_argument("roles", nargs="+")
    s.set_defaults(func=_run)

    s = sub.add_parser("demo", help="run a sample contest end to end and print a summary")
    s.add_argument("--candidates", type=int, default=200)
    s.add_argument(
        "--duration-seconds",
        type=int,
        default=45,
        help="each candidate's time limit in the demo contest",
    )
    s.add_argument("--json", action="store_true", help="print only the JSON summary")
    s.set_defaults(func=_demo)

    s = sub.add_parser("bench", help="benchmarks that print figures")
    s.add_argument("target", choices=["ingest", "sandbox"])
    s.add_argument("--seconds", type=float, default=10.0)
    s.add_argument("--concurrency", type=int, default=64)
    s.add_argument("--workers", type=int, default=2, help="ingest processes")
    s.add_argument("--runs", type=int, default=200, help="sandbox: programs to run")
    s.add_argument(
        "--parallel", type=int, default=os.cpu_count() or 1, help="sandbox: runs at once"
    )
    s.set_defaults(func=_bench)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    role = "+".join(args.roles) if args.command == "run" else args.command
    configure_logging(get_settings(), role)
    code: int = args.func(args)
    return code
