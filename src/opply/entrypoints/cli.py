"""The ``opply`` command: database migrations, users, demo data, idempotency housekeeping, and
the webhook worker."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import os
import sys
from collections.abc import Sequence
from datetime import timedelta

from opply.adapters.migrations import runner
from opply.domain.errors import DomainError
from opply.entrypoints import release
from opply.entrypoints.config import ConfigError, Settings
from opply.entrypoints.container import Container, build_container


def _container() -> Container:
    return build_container(Settings.from_env())


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    container = _container()
    runner.upgrade(container.engine(), args.revision)
    print(f"database at revision {runner.current(container.engine())}")
    return 0


def cmd_db_current(_: argparse.Namespace) -> int:
    print(runner.current(_container().engine()) or "(empty database)")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password is not None:
        return str(args.password)
    env_password = os.environ.get("OPPLY_PASSWORD")
    if env_password:
        return env_password
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password (again): "):
        raise SystemExit("the passwords do not match")
    return first


def cmd_users_create(args: argparse.Namespace) -> int:
    from opply.application.dto import NewUser

    container = _container()
    user = container.create_user()(
        NewUser(username=args.username, password=_read_password(args), is_staff=args.staff)
    )
    kind = "staff user" if user.is_staff else "customer"
    print(f"created {kind} {user.username!r} (id {user.id})")
    return 0


def cmd_users_password(args: argparse.Namespace) -> int:
    user = _container().set_password()(args.username, _read_password(args))
    print(f"password of {user.username!r} changed")
    return 0


def cmd_users_deactivate(args: argparse.Namespace) -> int:
    user = _container().set_user_active()(args.username, False)
    print(f"{user.username!r} deactivated")
    return 0


def cmd_demo_load(_: argparse.Namespace) -> int:
    from opply.entrypoints.demo import load_demo

    for line in load_demo(_container()):
        print(line)
    return 0


def cmd_idempotency_purge(args: argparse.Namespace) -> int:
    container = _container()
    cutoff = container.clock().now() - timedelta(hours=args.older_than_hours)
    with container.uow().write() as uow:
        removed = uow.idempotency.purge_older_than(cutoff)
        uow.commit()
    print(f"removed {removed} idempotency keys older than {args.older_than_hours} hours")
    return 0


class _PrintRelease(argparse.Action):
    """``--version``: works the release out only when asked (git may be called for it)."""

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        help: str | None = None,
    ) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(release.current())
        parser.exit()


def cmd_worker(_: argparse.Namespace) -> int:
    from opply.entrypoints.jsonlog import configure_logging
    from opply.entrypoints.worker import Worker, stop_on_signals

    settings = Settings.from_env()
    # A connection for each delivery thread and one for the loop: none waits for the pool.
    wanted = settings.webhook_concurrency + 1
    if settings.db_pool_size + settings.db_max_overflow < wanted:
        settings = dataclasses.replace(settings, db_pool_size=wanted - settings.db_max_overflow)
    container = build_container(settings)
    configure_logging(settings.log_level)
    worker = Worker(
        container.deliver_webhooks(),
        concurrency=settings.webhook_concurrency,
        poll_interval=settings.webhook_poll_interval,
    )
    stop_on_signals(worker)
    worker.run()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opply", description="Opply ordering backend")
    parser.add_argument(
        "--version", action=_PrintRelease, help="print the version and git commit, then exit"
    )
    sub = parser.add_subparsers(dest="group", required=True)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="cmd", required=True)
    up = db.add_parser("upgrade", help="apply migrations (default: to the newest)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)
    db.add_parser("current", help="show the applied revision").set_defaults(func=cmd_db_current)

    users = sub.add_parser("users", help="accounts").add_subparsers(dest="cmd", required=True)
    create = users.add_parser("create", help="create a customer (or --staff user)")
    create.add_argument("username")
    create.add_argument("--staff", action="store_true", help="may use staff endpoints and admin")
    create.add_argument("--password", help="otherwise prompted for (hidden) or read from stdin")
    create.set_defaults(func=cmd_users_create)
    pw = users.add_parser("set-password", help="reset a user's password")
    pw.add_argument("username")
    pw.add_argument("--password")
    pw.set_defaults(func=cmd_users_password)
    deact = users.add_parser("deactivate", help="stop a user from logging in")
    deact.add_argument("username")
    deact.set_defaults(func=cmd_users_deactivate)

    demo = sub.add_parser("demo", help="demo data").add_subparsers(dest="cmd", required=True)
    demo.add_parser("load", help="load the demo catalogue and users (idempotent)").set_defaults(
        func=cmd_demo_load
    )

    idem = sub.add_parser("idempotency", help="Idempotency-Key housekeeping").add_subparsers(
        dest="cmd", required=True
    )
    purge = idem.add_parser("purge", help="delete keys older than 24 hours")
    purge.add_argument("--older-than-hours", type=int, default=24)
    purge.set_defaults(func=cmd_idempotency_purge)

    sub.add_parser(
        "worker", help="deliver webhooks until SIGTERM or SIGINT (several may run at once)"
    ).set_defaults(func=cmd_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (DomainError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
