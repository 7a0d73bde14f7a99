"""A client's writes through a group's VIP, each recorded only once the server acknowledged it.

Run on the lab's ``client`` machine by :mod:`gardien_lab.chaos.writers`:

* ``mysql HOST PORT OPTION_FILE OUT``: inserts a row into ``lab.rows`` every 100 ms; after the
  commit returns, writes ``ID VALUE`` to ``OUT``;
* ``smb SERVER SHARE OUT``: puts a small file on the share every second with ``smbclient``; once it
  exits 0, writes ``NAME`` to ``OUT``.

Both stop when ``OUT.stop`` exists or after ``--limit`` seconds; a refused, failed or timed out
write is retried with the next one and is not recorded (it may or may not have landed: only
acknowledged writes are promised).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

MYSQL_PACE = 0.1
SMB_PACE = 1.0
SMB_TIMEOUT = 10.0
"""smbclient hangs on a frozen server whatever its own ``-t`` says: the write is killed then."""


def _loop(out: Path, limit: float, pace: float, write: Callable[[int], str | None]) -> int:
    stop = out.with_name(out.name + ".stop")
    deadline = time.monotonic() + limit
    written = 0
    with out.open("a", encoding="utf-8") as record:
        for n in range(10**9):
            if stop.exists() or time.monotonic() > deadline:
                break
            started = time.monotonic()
            acknowledged = write(n)
            if acknowledged is not None:
                record.write(acknowledged + "\n")
                record.flush()
                written += 1
            time.sleep(max(0.0, pace - (time.monotonic() - started)))
    return written


def _mysql(host: str, port: int, option_file: str, out: Path, limit: float) -> int:
    import pymysql  # noqa: PLC0415 - only this mode needs it

    tag = uuid.uuid4().hex[:8]
    connection: list[Any] = []

    def write(n: int) -> str | None:
        value = f"chaos-{tag}-{n}"
        try:
            if not connection:
                connection.append(
                    pymysql.connect(
                        host=host,
                        port=port,
                        read_default_file=option_file,
                        connect_timeout=2,
                        read_timeout=3,
                        write_timeout=3,
                        autocommit=False,
                    )
                )
            with connection[0].cursor() as cursor:
                cursor.execute("INSERT INTO lab.rows (v) VALUES (%s)", (value,))
                row_id = cursor.lastrowid
            connection[0].commit()
        except (pymysql.MySQLError, OSError):
            for c in connection:
                c.close() if c.open else None
            connection.clear()
            return None
        return f"{row_id} {value}"

    return _loop(out, limit, MYSQL_PACE, write)


def _smb(server: str, share: str, out: Path, limit: float) -> int:
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as folder:

        def write(n: int) -> str | None:
            name = f"chaos-{tag}-{n}.txt"
            local = Path(folder) / name
            local.write_text(name + "\n")
            try:
                done = subprocess.run(
                    ["smbclient", f"//{server}/{share}", "-N", "-c", f"put {local} {name}"],
                    capture_output=True,
                    timeout=SMB_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                return None
            return name if done.returncode == 0 else None

        return _loop(out, limit, SMB_PACE, write)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gardien_lab.chaos.writer")
    parser.add_argument("--limit", type=float, required=True, help="stop after this many seconds")
    sub = parser.add_subparsers(dest="mode", required=True)
    my = sub.add_parser("mysql")
    my.add_argument("host")
    my.add_argument("port", type=int)
    my.add_argument("option_file")
    my.add_argument("out", type=Path)
    smb = sub.add_parser("smb")
    smb.add_argument("server")
    smb.add_argument("share")
    smb.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.mode == "mysql":
        written = _mysql(args.host, args.port, args.option_file, args.out, args.limit)
    else:
        written = _smb(args.server, args.share, args.out, args.limit)
    print(f"{written} acknowledged writes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
