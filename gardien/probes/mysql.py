"""MySQL/MariaDB probe: log in to one instance, ping, run a query, optionally CHECK TABLE.

The instance is named by its unix socket or its host and port, so two instances on one node are
probed independently.  The user and password come from a my.cnf-style ``credentials_file``
(``[client]`` section), read at each check; they never reach argv, logs or metrics.

A SIGSTOPped server still completes the TCP or unix-socket connect (docs/lab.md section 5): what
bounds the probe is the read timeout on the server's greeting, so connect, read and write timeouts
are all set from the probe's budget, and no further step starts once the deadline has passed.
"""

from __future__ import annotations

import configparser
import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from pydantic import Field, model_validator

from gardien.probes.base import Probe, ProbeParams, ProbeResult
from gardien.probes.registry import register
from gardien.types import SecretFile

if TYPE_CHECKING:
    import pymysql

_CHECK_OK = ("OK", "Table is already up to date")


class MysqlParams(ProbeParams):
    socket: str | None = Field(None, pattern=r"^/")
    host: str | None = None
    port: int = Field(3306, ge=1, le=65535)
    credentials_file: SecretFile | None = None
    """my.cnf-style file whose ``[client]`` section holds ``user`` and ``password``."""
    database: str | None = None
    query: str = "SELECT 1"
    """Must succeed (any result); e.g. a SELECT on an application table."""
    check_tables: tuple[str, ...] = ()
    """``db.table`` names to run ``CHECK TABLE`` on (opt-in: it reads the whole table)."""
    check_databases: tuple[str, ...] = ()
    """Every base table of these databases is checked."""

    @model_validator(mode="after")
    def _one_address(self) -> Self:
        if (self.socket is None) == (self.host is None):
            raise ValueError("give exactly one of 'socket' or 'host' (with 'port')")
        for table in self.check_tables:
            if table.count(".") != 1 or "`" in table:
                raise ValueError(f"check_tables: {table!r} is not 'database.table'")
        return self


@dataclass(frozen=True)
class Credentials:
    user: str | None = None
    password: str = ""

    @classmethod
    def read(cls, path: Path | None) -> Credentials:
        """``user`` and ``password`` of the ``[client]`` section of a my.cnf-style file."""
        if path is None:
            return cls()
        parser = configparser.ConfigParser(allow_no_value=True, interpolation=None, strict=False)
        with path.open() as handle:
            parser.read_file(handle)
        if not parser.has_section("client"):
            return cls()

        def value(key: str) -> str | None:
            raw = parser.get("client", key, fallback=None)
            if raw is not None and len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
                raw = raw[1:-1]
            return raw

        return cls(user=value("user"), password=value("password") or "")


Connector = Callable[..., Any]
"""``pymysql.connect`` or a stand-in with the same keyword arguments."""


@functools.cache
def _connection_class(pymysql: Any) -> Connector:
    """pymysql's connection, with the TLS context of its preferred-TLS mode built once.

    Given no TLS option, pymysql builds a context for every connection (TLS is used when the server
    offers it, unverified), and building one loads the system's CA bundle, which that unverified
    mode never reads: about 45 ms of CPU, nearly all of a probe run (docs/benchmarks.md "Idle cost
    per probe").  The same context serves every connection (an ``SSLContext`` may be shared
    between threads), so the session and what the server is asked are exactly as before.
    """
    base = pymysql.connections.Connection
    preferred: list[Any] = []

    class Connection(base):  # type: ignore[misc, valid-type]
        def _create_ssl_ctx(self, sslp: Any) -> Any:
            if sslp:  # explicit TLS options (none today): built as pymysql builds them
                return super()._create_ssl_ctx(sslp)
            if not preferred:
                preferred.append(super()._create_ssl_ctx(sslp))
            return preferred[0]

    return Connection


class _OutOfTimeError(Exception):
    pass


@register
class MysqlProbe(Probe[MysqlParams]):
    kind = "mysql"
    params_model = MysqlParams
    values = {  # noqa: RUF012 - ClassVar of the base
        "ping_ok": "1 when the server accepted the login and answered a ping.",
        "query_ok": "1 when the configured query succeeded.",
        "tables_checked": "Tables CHECK TABLE ran on in this probe run.",
        "tables_failed": "Tables CHECK TABLE reported as not OK (or could not check).",
    }

    def __init__(self, params: MysqlParams, connect: Connector | None = None) -> None:
        super().__init__(params)
        # pymysql and the cryptography it pulls in weigh ~8 MiB: loaded only for a mysql probe
        import pymysql  # noqa: PLC0415

        self._connect = connect or _connection_class(pymysql)

    @property
    def _where(self) -> str:
        p = self.params
        return p.socket or f"{p.host}:{p.port}"

    def check(self, timeout: float) -> ProbeResult:
        import pymysql  # noqa: PLC0415 - already loaded by __init__

        p = self.params
        deadline = time.monotonic() + timeout
        facts = {"ping_ok": 0.0, "query_ok": 0.0, "tables_checked": 0.0, "tables_failed": 0.0}
        try:
            creds = Credentials.read(p.credentials_file)
        except (OSError, configparser.Error) as exc:
            return ProbeResult.failure(f"credentials file: {exc}", **facts)
        address: dict[str, Any] = (
            {"unix_socket": p.socket} if p.socket else {"host": p.host, "port": p.port}
        )
        try:
            conn = self._connect(
                user=creds.user,
                password=creds.password,
                database=p.database,
                connect_timeout=timeout,
                read_timeout=timeout,
                write_timeout=timeout,
                autocommit=True,
                **address,
            )
        except pymysql.Error as exc:
            return ProbeResult.failure(f"connect to {self._where}: {_message(exc)}", **facts)
        try:
            with conn.cursor() as cursor:
                conn.ping(reconnect=False)
                facts["ping_ok"] = 1
                _in_time(deadline)
                cursor.execute(p.query)
                cursor.fetchall()
                facts["query_ok"] = 1
                if p.check_tables or p.check_databases:
                    failed = self._check_tables(cursor, deadline, facts)
                    if failed:
                        return ProbeResult.failure(failed, **facts)
        except _OutOfTimeError:
            return ProbeResult.failure(f"timeout: {timeout:g} s spent on {self._where}", **facts)
        except pymysql.Error as exc:
            step = "query" if facts["ping_ok"] else "ping"
            return ProbeResult.failure(f"{step} on {self._where}: {_message(exc)}", **facts)
        finally:
            if conn.open:
                with contextlib.suppress(pymysql.Error, OSError):
                    conn.close()
        return ProbeResult.success(**facts)

    def _check_tables(self, cursor: Any, deadline: float, facts: dict[str, float]) -> str:
        """Run CHECK TABLE on each configured table; the first problem found, or ""."""
        tables = [tuple(t.split(".")) for t in self.params.check_tables]
        for database in self.params.check_databases:
            _in_time(deadline)
            cursor.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY table_name",
                (database,),
            )
            tables += [(database, row[0]) for row in cursor.fetchall()]
        problem = ""
        for database, table in dict.fromkeys(tables):
            _in_time(deadline)
            cursor.execute(f"CHECK TABLE {_quote(database)}.{_quote(table)}")
            rows = cursor.fetchall()
            facts["tables_checked"] += 1
            # mysqlcheck's verdict: any error row, or a last status that is not OK
            errors = [r[3] for r in rows if str(r[2]).lower() == "error"]
            last = rows[-1][3] if rows else "no answer"
            if errors or last not in _CHECK_OK:
                facts["tables_failed"] += 1
                problem = problem or f"table {database}.{table}: {errors[0] if errors else last}"
        return problem


def _in_time(deadline: float) -> None:
    if time.monotonic() >= deadline:
        raise _OutOfTimeError


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def _message(exc: pymysql.Error) -> str:
    """pymysql's ``(code, 'text')`` as ``text (code)``; "timed out" errors say timeout."""
    if len(exc.args) >= 2:
        text = f"{exc.args[1]} ({exc.args[0]})"
    else:
        text = str(exc) or type(exc).__name__
    return f"timeout: {text}" if "timed out" in text and not text.startswith("timeout") else text
