"""The mysql probe against two real MariaDB instances on one host (own datadir, socket, port)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from gardien.probes.mysql import MysqlParams, MysqlProbe
from gardien_lab.daemons import mariadb
from tests.probes.conftest import MariadbUnderTest, needs_root

pytestmark = [needs_root, pytest.mark.timeout(180)]

Pair = tuple[MariadbUnderTest, MariadbUnderTest]


def by_socket(db: MariadbUnderTest, **params: object) -> MysqlProbe:
    return MysqlProbe(
        MysqlParams(socket=str(db.inst.socket), credentials_file=db.credentials, **params)  # type: ignore[arg-type]
    )


def by_tcp(db: MariadbUnderTest, **params: object) -> MysqlProbe:
    return MysqlProbe(
        MysqlParams(
            host=db.inst.address,
            port=db.inst.port,
            credentials_file=db.credentials,
            **params,  # type: ignore[arg-type]
        )
    )


@pytest.fixture
def pair(mariadb_pair: Pair) -> Iterator[Pair]:
    """The session's two instances, both running again after the test whatever it did."""
    yield mariadb_pair
    for db in mariadb_pair:
        assert db.daemon is not None
        db.daemon.signal_group(signal.SIGCONT)
        if db.daemon.proc.poll() is not None:
            db.start()


def test_both_instances_pass_by_socket_and_by_tcp(pair: Pair) -> None:
    for db in pair:
        for make in (by_socket, by_tcp):
            result = make(db).run()
            assert result.ok, f"{db.inst.name} {make.__name__}: {result.reason}"
            assert result.values == {
                "ping_ok": 1, "query_ok": 1, "tables_checked": 0, "tables_failed": 0,
            }  # fmt: skip


def test_the_two_instances_are_distinct_servers(pair: Pair) -> None:
    one, two = pair
    query = f"SELECT 1 FROM DUAL WHERE @@port = {two.inst.port}"
    assert by_socket(two, query=query).run().ok
    # the same query on the other instance returns no row but succeeds: check the port differs
    assert one.inst.port != two.inst.port and one.inst.socket != two.inst.socket
    bad = by_socket(one, query="SELECT no_such_column FROM app.t").run()
    assert not bad.ok
    assert bad.values["ping_ok"] == 1 and bad.values["query_ok"] == 0
    assert "Unknown column" in bad.reason


def test_stopping_one_instance_fails_only_that_one(pair: Pair) -> None:
    one, two = pair
    assert two.daemon is not None
    two.daemon.stop()

    down_socket = by_socket(two, timeout=2).run()
    down_tcp = by_tcp(two, timeout=2).run()
    up = by_socket(one).run()

    assert not down_socket.ok and not down_tcp.ok
    assert down_socket.values["ping_ok"] == 0
    assert f"connect to {two.inst.socket}" in down_socket.reason
    assert up.ok, up.reason


def test_a_stopped_server_fails_within_the_timeout(pair: Pair) -> None:
    one, two = pair
    assert two.daemon is not None
    # process present, answers nothing (docs/lab.md section 5)
    two.daemon.signal_group(signal.SIGSTOP)
    try:
        hung_socket = by_socket(two, timeout=1).run()
        hung_tcp = by_tcp(two, timeout=1).run()
        up = by_tcp(one, timeout=1).run()
    finally:
        two.daemon.signal_group(signal.SIGCONT)

    for hung in (hung_socket, hung_tcp):
        assert not hung.ok
        assert hung.values["ping_ok"] == 0
        assert "timeout" in hung.reason or "Lost connection" in hung.reason, hung.reason
    assert up.ok, up.reason
    assert by_socket(two).run().ok  # resumes by itself after SIGCONT


def test_wrong_password_fails_and_never_shows_the_password(pair: Pair, tmp_path: Path) -> None:
    one, _ = pair
    creds = tmp_path / "wrong.cnf"
    creds.write_text("[client]\nuser=probe\npassword=not-the-password\n")
    result = MysqlProbe(MysqlParams(socket=str(one.inst.socket), credentials_file=creds)).run()

    assert not result.ok
    assert "Access denied" in result.reason
    assert "not-the-password" not in result.reason


def test_table_check_on_real_tables(pair: Pair) -> None:
    one, _ = pair
    tables = by_socket(one, check_tables=["app.t"]).run()
    database = by_tcp(one, check_databases=["app"]).run()

    assert tables.ok, tables.reason
    assert tables.values["tables_checked"] == 1
    assert database.ok, database.reason
    assert database.values == {"ping_ok": 1, "query_ok": 1, "tables_checked": 2, "tables_failed": 0}


def test_table_check_reports_a_corrupt_table(pair: Pair) -> None:
    _, two = pair
    mariadb.run_sql(
        two.inst,
        "CREATE TABLE app.broken (id INT PRIMARY KEY) ENGINE=MyISAM;"
        " INSERT INTO app.broken VALUES (1), (2), (3); FLUSH TABLES;",
    )
    try:
        index = two.inst.datadir / "app" / "broken.MYI"
        data = bytearray(index.read_bytes())
        data[24:40] = b"\xff" * 16  # the state header: key file length, record counts
        index.write_bytes(bytes(data))
        result = by_socket(two, check_tables=["app.t", "app.broken"]).run()
    finally:
        mariadb.run_sql(two.inst, "DROP TABLE IF EXISTS app.broken;")

    assert not result.ok
    assert result.values["tables_checked"] == 2
    assert result.values["tables_failed"] == 1
    assert result.reason.startswith("table app.broken:"), result.reason


def test_missing_credentials_file_is_a_failure(tmp_path: Path, pair: Pair) -> None:
    one, _ = pair
    params = MysqlParams.model_validate(
        {"socket": str(one.inst.socket), "credentials_file": str(tmp_path / "none.cnf")},
        context={"check_files": False},
    )
    result = MysqlProbe(params).run()

    assert not result.ok
    assert result.reason.startswith("credentials file:")
