"""A connection flood against gardien's daemons, as an attacker on the cluster network would send it
(issue 13): slow connections that send a partial request and keep it open, plus a stream of
unauthenticated requests.  Run inside a lab machine (``python -m gardien_lab.flood``), from a
source address of its own so that the machine's other clients (Prometheus in ``mon``) keep theirs.

Bounded in every way: connections per target, requests, seconds; it refuses any address outside
loopback and the lab's supernet (``--supernet``: the network safety rule, traffic only to what
the lab made).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import socket
import sys
import threading
import time

MAX_SLOW = 5000
"""Slow connections per target, at most."""
MAX_SECONDS = 300.0
MAX_REQUESTS = 200_000
"""Unauthenticated requests in all, at most."""
PARTIAL_REQUEST = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n"
"""The start of a request whose end never comes."""
UNAUTHENTICATED_REQUEST = b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
"""A whole request without credentials: the server must answer it 401, and nothing else."""
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def _target(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _outside(addresses: list[str], supernet: ipaddress.IPv4Network) -> list[str]:
    """The addresses that are neither loopback nor inside the lab's ``supernet``."""
    return [
        a for a in addresses if not any(ipaddress.ip_address(a) in n for n in (LOOPBACK, supernet))
    ]


class Flood:
    """Holds the slow connections and runs the request threads until ``seconds`` passed."""

    def __init__(
        self,
        source: str,
        targets: list[tuple[str, int]],
        slow: int,
        threads: int,
        seconds: float,
    ) -> None:
        self.source = source
        self.targets = targets
        self.slow = min(slow, MAX_SLOW)
        self.threads = threads
        self.seconds = min(seconds, MAX_SECONDS)
        self.opened = 0
        self.refused = 0
        self.requests = 0
        self.answered = 0
        self._lock = threading.Lock()
        self._end = time.monotonic() + self.seconds

    def _connect(self, target: tuple[str, int], timeout: float = 2.0) -> socket.socket:
        return socket.create_connection(target, timeout=timeout, source_address=(self.source, 0))

    def _open_slow(self) -> list[socket.socket]:
        held: list[socket.socket] = []
        for target in self.targets:
            for _ in range(self.slow):
                if time.monotonic() >= self._end:
                    return held
                try:
                    sock = self._connect(target)
                    sock.sendall(PARTIAL_REQUEST)
                except OSError:
                    self.refused += 1
                    continue
                held.append(sock)
                self.opened += 1
        return held

    def _requests(self, target: tuple[str, int]) -> None:
        while time.monotonic() < self._end:
            with self._lock:
                if self.requests >= MAX_REQUESTS:
                    return
                self.requests += 1
            try:
                with self._connect(target, 1.0) as sock:
                    sock.sendall(
                        b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                    )
                    if sock.recv(64):
                        with self._lock:
                            self.answered += 1
            except OSError:
                time.sleep(0.01)

    def run(self) -> dict[str, float]:
        workers = [
            threading.Thread(target=self._requests, args=(self.targets[i % len(self.targets)],))
            for i in range(self.threads)
        ]
        for worker in workers:
            worker.start()
        held = self._open_slow()
        time.sleep(max(0.0, self._end - time.monotonic()))
        for worker in workers:
            worker.join(timeout=5)
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()
        return {
            "slow_opened": self.opened,
            "slow_refused": self.refused,
            "requests": self.requests,
            "answered": self.answered,
            "seconds": self.seconds,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gardien_lab.flood", description=__doc__)
    parser.add_argument("--supernet", type=ipaddress.IPv4Network, required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--target", type=_target, action="append", required=True)
    parser.add_argument("--slow", type=int, default=1000, help="slow connections per target")
    parser.add_argument("--threads", type=int, default=8, help="request threads")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    outside = _outside([args.source, *(host for host, _ in args.target)], args.supernet)
    if outside:
        parser.error(f"outside loopback and the lab's supernet: {', '.join(outside)}")
    result = Flood(args.source, args.target, args.slow, args.threads, args.seconds).run()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
