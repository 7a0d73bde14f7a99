"""The console relay: the host's browser opens node1's web console at ``http://127.0.0.1:PORT/ui/``.

The lab's hooks listen only inside the lab's namespaces, and the root namespace holds an
``unreachable`` route for the lab's supernet (never changed).  Python 3.11 has no ``os.setns``,
so the relay is two processes joined by a Unix socket, a file, which every network namespace
reaches (docs/lab.md, "The console from the host"):

- *inner*, on ``mon`` (:func:`gardien_lab.topology.spawn`): accepts on the Unix socket and
  connects to the hook over TCP.  It refuses any target outside the lab's supernet, so the relay
  can never carry traffic anywhere else.
- *outer*, in the root namespace: accepts TCP on loopback only and connects to the Unix socket.

Each connection is copied both ways in chunks, through the streams' bounded buffers (a writer
drains before the next read), and closed when both ways have ended or nothing went either way
for :data:`IDLE_SECONDS`; at most :data:`MAX_CONNECTIONS` at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from gardien import exitcodes
from gardien.polling import wait_until
from gardien_lab import clusterconfig, netns
from gardien_lab.netns import LabError
from gardien_lab.topology import Lab, log_file, spawn

log = logging.getLogger(__name__)

PORT = 19490
"""The relay's port on the host's loopback (next to the exporter's 19480 and the hook's 19481)."""
SUPERNET = Lab().supernet
"""The only addresses the inner side connects to: the lab's."""
CHUNK = 64 * 1024
IDLE_SECONDS = 300.0
"""A connection nothing went through for this long is closed (a browser keeps its own alive)."""
CONNECT_SECONDS = 10.0
MAX_CONNECTIONS = 64
_NAME = "relay"
"""The inner's daemon name on ``mon``; the outer's pid file and log are ``root-relay``."""

Connect = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


# -- the two sides ------------------------------------------------------------------------------


def check_target(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``host`` as an address inside :data:`SUPERNET`; ValueError for anything else (a name,
    an address outside)."""
    address = ipaddress.ip_address(host)
    if address not in SUPERNET:
        raise ValueError(f"{host} is outside the lab's supernet {SUPERNET}")
    return address


def check_listen(address: str) -> tuple[str, int]:
    """``HOST:PORT`` of the outer side, a loopback address only (the host's browser, or an SSH
    tunnel ending on the host; never the host's networks)."""
    host, _, port = address.rpartition(":")
    if not ipaddress.ip_address(host.strip("[]")).is_loopback:
        raise ValueError(f"{host} is not a loopback address")
    return host.strip("[]"), int(port)


class _Activity:
    """When anything last went through a connection, either way."""

    def __init__(self) -> None:
        self.at = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.at


async def _copy(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, activity: _Activity, idle: float
) -> None:
    """``src`` to ``dst`` until its end (then half-close ``dst``) or ``idle`` seconds of no
    traffic either way."""
    while True:
        try:
            data = await asyncio.wait_for(src.read(CHUNK), timeout=idle)
        except TimeoutError:
            if activity.idle_for() >= idle:
                return
            continue
        if not data:
            if dst.can_write_eof():
                dst.write_eof()
            return
        activity.at = time.monotonic()
        dst.write(data)
        await asyncio.wait_for(dst.drain(), timeout=idle)


async def pipe(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    connect: Connect,
    idle: float = IDLE_SECONDS,
) -> None:
    """Copy ``client`` to what ``connect`` opens and back; both closed at the end."""
    reader, writer = client
    try:
        up_reader, up_writer = await asyncio.wait_for(connect(), timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError) as exc:
        log.warning("relay: cannot connect onwards: %s", exc)
        writer.close()
        return
    activity = _Activity()
    ways = [
        asyncio.create_task(_copy(reader, up_writer, activity, idle)),
        asyncio.create_task(_copy(up_reader, writer, activity, idle)),
    ]
    try:
        # both ways to their end (each half-closes the other end); an error ends both
        await asyncio.wait(ways, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in ways:
            task.cancel()
        for end in (writer, up_writer):
            end.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await asyncio.gather(*ways, return_exceptions=True)
            await asyncio.gather(writer.wait_closed(), up_writer.wait_closed())


async def _serve(start: Callable[..., Awaitable[asyncio.Server]], connect: Connect) -> None:
    """Accept with ``start(handler)`` and relay every connection until SIGTERM or SIGINT."""
    slots = asyncio.Semaphore(MAX_CONNECTIONS)
    live: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if slots.locked():
            log.warning("relay: %d connections already, one refused", MAX_CONNECTIONS)
            writer.close()
            return
        async with slots:
            task = asyncio.current_task()
            assert task is not None  # a handler runs in a task of its own
            live.add(task)
            try:
                await pipe((reader, writer), connect)
            finally:
                live.discard(task)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await start(handle)
    try:
        await stop.wait()
    finally:  # no new connection, and the open ones closed: nothing waits for their idle end
        server.close()
        for task in list(live):
            task.cancel()
        await asyncio.gather(*live, return_exceptions=True)


def inner(sock: Path, host: str, port: int) -> int:
    """Accept on the Unix socket ``sock``, relay to ``host:port`` (inside the lab's supernet)."""
    try:
        target = str(check_target(host))
    except ValueError as exc:
        print(f"relay: refused target: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(sock.lstat().st_mode):
            sock.unlink()  # a relay's that did not end cleanly
    sock.parent.mkdir(parents=True, exist_ok=True)

    async def start(handle: Callable[..., Awaitable[None]]) -> asyncio.Server:
        server = await asyncio.start_unix_server(handle, path=sock, limit=CHUNK)
        os.chmod(sock, 0o600)  # root's, as the hook's token is
        log.info("relay: %s -> %s:%d", sock, target, port)
        return server

    try:
        asyncio.run(_serve(start, lambda: asyncio.open_connection(target, port, limit=CHUNK)))
    finally:
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
    return exitcodes.OK


def outer(listen: str, sock: Path) -> int:
    """Accept TCP on ``listen`` (a loopback ``HOST:PORT``), relay to the Unix socket ``sock``."""
    try:
        host, port = check_listen(listen)
    except ValueError as exc:
        print(f"relay: refused listen address: {exc}", file=sys.stderr)
        return exitcodes.USAGE

    async def start(handle: Callable[..., Awaitable[None]]) -> asyncio.Server:
        server = await asyncio.start_server(handle, host, port, limit=CHUNK, reuse_address=True)
        log.info("relay: %s:%d -> %s", host, port, sock)
        return server

    asyncio.run(_serve(start, lambda: asyncio.open_unix_connection(sock, limit=CHUNK)))
    return exitcodes.OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gardien_lab.relay", description=__doc__)
    sides = parser.add_subparsers(dest="side", required=True)
    one = sides.add_parser("inner", help="Unix socket -> the hook (run on mon)")
    one.add_argument("sock", type=Path)
    one.add_argument("host")
    one.add_argument("port", type=int)
    other = sides.add_parser("outer", help="loopback TCP -> Unix socket (root namespace)")
    other.add_argument("listen", metavar="HOST:PORT")
    other.add_argument("sock", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.side == "inner":
        return inner(args.sock, args.host, args.port)
    return outer(args.listen, args.sock)


# -- in the lab ---------------------------------------------------------------------------------


def socket_path(lab: Lab) -> Path:
    return lab.dir / "run" / "console.sock"


def console_url(port: int = PORT) -> str:
    return f"http://127.0.0.1:{port}/ui/"


def _outer_pid_file(lab: Lab) -> Path:
    return lab.dir / "run" / f"root-{_NAME}.pid"


def outer_argv(listen: str, sock: Path) -> list[str]:
    return [sys.executable, "-m", "gardien_lab.relay", "outer", listen, str(sock)]


def answers(family: socket.AddressFamily, address: str | tuple[str, int]) -> bool:
    """Whether something accepts connections on ``address`` (a Unix socket's path, or a
    loopback address and port)."""
    with socket.socket(family) as probe:
        probe.settimeout(1)
        return probe.connect_ex(address) == 0


def outer_running(lab: Lab) -> int | None:
    """PID of this lab's outer side if it runs: the process of its pid file, checked (this
    lab's relay to its socket, in the root namespace), not trusted."""
    try:
        pid = int(_outer_pid_file(lab).read_text())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:-1]
        same_ns = os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net")
    except (OSError, ValueError):
        return None
    wanted = [a.encode() for a in outer_argv("", socket_path(lab))[1:]]
    ours = len(argv) == len(wanted) and argv[:3] + argv[4:] == wanted[:3] + wanted[4:]
    return pid if same_ns and ours and netns.alive(pid) else None


def start_outer(lab: Lab, port: int = PORT) -> int:
    """The outer side on 127.0.0.1:``port`` of the root namespace, unless it runs; its pid."""
    pid = outer_running(lab)
    if pid is not None:
        return pid
    out = log_file(lab, "root", _NAME)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("ab") as stream:
        proc = subprocess.Popen(
            outer_argv(f"127.0.0.1:{port}", socket_path(lab)),
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _outer_pid_file(lab).parent.mkdir(parents=True, exist_ok=True)
    _outer_pid_file(lab).write_text(f"{proc.pid}\n")
    loopback = (socket.AF_INET, ("127.0.0.1", port))
    wait_until(lambda: answers(*loopback) or proc.poll() is not None, 30)
    if proc.poll() is not None or not answers(*loopback):
        raise LabError(f"the console relay does not listen on 127.0.0.1:{port}: see {out}")
    log.info("console relay started (pid %d): %s", proc.pid, console_url(port))
    return proc.pid


def start(lab: Lab) -> str:
    """Start both sides unless they run (the hooks must be up); returns the console's URL."""
    sock = socket_path(lab)
    hook = str(lab.cluster_address("node1"))
    inner_argv = [sys.executable, "-m", "gardien_lab.relay", "inner", str(sock), hook]
    spawn(lab, "mon", _NAME, [*inner_argv, str(clusterconfig.HOOK_PORT)])
    if not wait_until(lambda: answers(socket.AF_UNIX, str(sock)), 30):
        raise LabError(f"the console relay on mon does not accept on {sock}: see its log")
    start_outer(lab)
    return console_url()


def stop(lab: Lab) -> None:
    """Stop the outer side (the inner one ends with ``mon``: :func:`machines.teardown`)."""
    pid = outer_running(lab)
    if pid is not None:
        netns.kill_all(lambda: [pid] if netns.alive(pid) else [], grace=3.0)
    _outer_pid_file(lab).unlink(missing_ok=True)


def status(lab: Lab) -> dict[str, str]:
    """The console's URL (or that the relay is stopped) and where its token is."""
    running = outer_running(lab) is not None and answers(socket.AF_UNIX, str(socket_path(lab)))
    return {
        "console (host)": console_url() if running else "STOPPED (gardien lab up starts it)",
        "console token": str(clusterconfig.token_file(lab)),
    }


if __name__ == "__main__":
    sys.exit(main())
