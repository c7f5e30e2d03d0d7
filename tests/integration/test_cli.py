"""The `opply` command on a real SQLite database: migrate, users, demo data, housekeeping."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opply.adapters.migrations import runner
from opply.entrypoints.cli import main
from opply.entrypoints.config import Settings
from opply.entrypoints.container import build_container
from opply.entrypoints.demo import CATALOGUE, DEMO_CUSTOMER, DEMO_STAFF


@pytest.fixture
def db_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    db = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("SECRET_KEY", "cli-test-secret-key-0123456789abcdefghij")
    monkeypatch.setenv("OPPLY_ENV", "test")
    monkeypatch.chdir(tmp_path)
    assert main(["db", "upgrade"]) == 0
    return db


def _login_works(username: str, password: str) -> bool:
    container = build_container(Settings.from_env(load_dotenv_file=False))
    try:
        container.authenticate()(username, password)
    except Exception:
        return False
    return True


def test_db_upgrade_brings_an_empty_database_to_the_newest_revision(
    db_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "current"]) == 0
    # The last line: earlier tests may have routed log lines to stdout as well.
    assert capsys.readouterr().out.strip().splitlines()[-1] == runner.head_revision()


def test_users_create_makes_a_customer_or_staff_user_who_can_log_in(
    db_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["users", "create", "alice", "--password", "alice-long-pass"]) == 0
    assert "created customer 'alice'" in capsys.readouterr().out
    assert main(["users", "create", "boss", "--staff", "--password", "boss-long-pass"]) == 0
    assert "created staff user 'boss'" in capsys.readouterr().out
    assert _login_works("alice", "alice-long-pass")
    assert not _login_works("alice", "wrong-password")


def test_users_create_reads_the_password_from_stdin_when_not_given(
    db_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("piped-in-password\n"))
    assert main(["users", "create", "carol"]) == 0
    assert _login_works("carol", "piped-in-password")


def test_users_create_refuses_weak_passwords_and_taken_names(
    db_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["users", "create", "dave", "--password", "password"]) == 1
    assert "too common" in capsys.readouterr().err
    assert main(["users", "create", "dave", "--password", "dave-long-pass"]) == 0
    assert main(["users", "create", "dave", "--password", "dave-long-pass"]) == 1
    assert "taken" in capsys.readouterr().err


def test_deactivate_and_set_password(db_env: Path) -> None:
    main(["users", "create", "erin", "--password", "erin-long-pass"])
    assert main(["users", "set-password", "erin", "--password", "erin-new-pass"]) == 0
    assert _login_works("erin", "erin-new-pass")
    assert main(["users", "deactivate", "erin"]) == 0
    assert not _login_works("erin", "erin-new-pass")
    assert main(["users", "deactivate", "nobody"]) == 1


def test_demo_load_is_idempotent_and_prints_the_demo_accounts(
    db_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "load"]) == 0
    first = capsys.readouterr().out
    assert f"{len(CATALOGUE)} products added" in first
    assert DEMO_CUSTOMER[0] in first
    assert DEMO_STAFF[1] in first
    assert main(["demo", "load"]) == 0
    again = capsys.readouterr().out
    assert f"0 products added, {len(CATALOGUE)} already there" in again
    assert f"catalogue now holds {len(CATALOGUE)} products" in again
    assert _login_works(*DEMO_CUSTOMER)


def test_idempotency_purge_removes_only_keys_older_than_24_hours(
    db_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from decimal import Decimal

    from opply.adapters.memory import FixedClock
    from opply.application.dto import NewProduct, NewUser, PlaceOrderCommand
    from opply.application.orders import PlaceOrder
    from opply.domain.model import LineRequest

    container = build_container(Settings.from_env(load_dotenv_file=False))
    product = container.create_product()(
        NewProduct(name="Rye", price=Decimal("2.00"), quantity_in_stock=10)
    )
    user = container.create_user()(NewUser(username="frank", password="frank-long-pass"))
    lines = [LineRequest(product_id=product.id, quantity=1)]
    old_clock = FixedClock(datetime.now(UTC) - timedelta(hours=30))
    thirty_hours_ago = PlaceOrder(container.uow(), old_clock, "EUR")
    thirty_hours_ago(PlaceOrderCommand(customer_id=user.id, lines=lines, idempotency_key="old-key"))
    container.place_order()(
        PlaceOrderCommand(customer_id=user.id, lines=lines, idempotency_key="new-key")
    )

    assert main(["idempotency", "purge"]) == 0
    assert "removed 1 idempotency keys" in capsys.readouterr().out
    with container.uow().write() as uow:
        assert uow.idempotency.get(user.id, "old-key") is None
        assert uow.idempotency.get(user.id, "new-key") is not None
