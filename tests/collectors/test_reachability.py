"""One round of ICMP echoes (gardien.node.reachability.Pinger.round) in test namespaces.

The round runs in this process, its thread moved into a test node's network namespace
(``Node.entered``): every echo goes to the node's loopback or to a router node on the node's
switch.  Without CAP_NET_RAW it runs in a child on the node, its bounding set without that
capability (``setpriv``), as a daemon without the privilege would.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import icmplib
import pytest

from gardien.node.reachability import NO_ANSWER, IPAddress, Pinger
from gardien.polling import Deadline
from tests.support.netns import Node, Switch, have_root_and_netns, nodes

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
]

V4, V4_OTHER, V6 = (ipaddress.ip_address(a) for a in ("127.0.0.1", "127.0.0.2", "::1"))


@pytest.fixture(scope="module")
def lan() -> Iterator[tuple[Switch, Node, list[IPAddress]]]:
    """A node and a router holding three addresses of the switch's subnet."""
    with nodes("png", "prt") as (switch, (node, router)):
        held = router.run(["ip", "-4", "-o", "addr", "show", "eth0"]).stdout.split()[3]
        addresses: list[IPAddress] = [ipaddress.ip_address(held.split("/")[0])]
        for _ in range(2):
            extra = switch.next_address()
            router.run(["ip", "addr", "add", f"{extra}/{switch.subnet.prefixlen}", "dev", "eth0"])
            addresses.append(extra)
        yield switch, node, addresses


@pytest.fixture
def node() -> Iterator[Node]:
    made = Node("pnl")
    try:
        yield made
    finally:
        made.destroy()


@contextlib.contextmanager
def threads_started() -> Iterator[list[str]]:
    """The names of the threads started meanwhile (``threading.settrace`` runs in each)."""
    started: list[str] = []

    def trace(_frame: FrameType, _event: str, _arg: object) -> None:
        started.append(threading.current_thread().name)

    threading.settrace(trace)  # type: ignore[arg-type]
    try:
        yield started
    finally:
        threading.settrace(None)  # type: ignore[arg-type]


def test_every_target_answers_in_one_round_on_this_thread(
    lan: tuple[Switch, Node, list[IPAddress]],
) -> None:
    _switch, node, routed = lan
    targets = [*routed, V4, V6]
    with node.entered(), threads_started() as started:
        results = Pinger().round(targets, 1.0)

    assert [r.up for r in results] == [True] * len(targets)
    assert all(0 < r.rtt < 1.0 for r in results)
    assert started == []


def test_a_silent_target_holds_no_other_answer(lan: tuple[Switch, Node, list[IPAddress]]) -> None:
    """Two targets nobody holds (no neighbour answers for them) before one that answers: the
    three are awaited together, where a wait for each in turn would spend the whole deadline on
    the first two and miss the third's answer."""
    switch, node, routed = lan
    silent = [switch.next_address(), switch.next_address()]
    with node.entered():
        results = Pinger().round([*silent, routed[0]], 1.0, Deadline(1.5))

    assert results[:2] == [NO_ANSWER, NO_ANSWER]
    assert results[2].up


def test_ipv4_and_ipv6_on_loopback_and_a_target_twice(node: Node) -> None:
    targets = [V6, V4, V4_OTHER, V6, V4]
    with node.entered():
        results = Pinger().round(targets, 1.0)

    assert [r.up for r in results] == [True] * len(targets)


def test_an_echo_not_sent_is_logged_once_and_down(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    """The node has no route but its loopback: the echo to an address of the test range cannot
    leave (no traffic anywhere), the loopback's is answered."""
    unroutable = ipaddress.ip_address("10.213.255.9")
    pinger = Pinger()
    with node.entered(), caplog.at_level(logging.INFO, "gardien.node.reachability"):
        rounds = [pinger.round([unroutable, V4], 1.0) for _ in range(3)]

    assert all(r[0] == NO_ANSWER and r[1].up for r in rounds)
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 1 and logged[0].startswith(f"cannot send an ICMP echo to {unroutable}")


class _ReplySocket(icmplib.ICMPv4Socket):  # type: ignore[misc]
    """icmplib's socket writing echo replies (type 0) instead of requests, to forge answers."""

    _ICMP_ECHO_REQUEST = 0


def _forge_answers(ready: threading.Event, done: threading.Event) -> None:
    """Answer the round's requests (seen on loopback by a raw socket of this test) by hand: the
    one to 127.0.0.2 with its identifier and sequence, the one to 127.0.0.1 with another
    identifier, then another sequence (its namespace ignores echoes, so nothing else answers)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    listener.settimeout(5)
    forger = _ReplySocket()
    ready.set()
    try:
        pending = {str(V4), str(V4_OTHER)}
        while pending:  # ends at the first 5 s without a packet (socket.timeout)
            packet = listener.recv(1024)
            kind, _code, _sum, ident, seq = struct.unpack("!BBHHH", packet[20:28])
            destination = socket.inet_ntoa(packet[16:20])
            if kind != 8 or destination not in pending:
                continue
            pending.discard(destination)
            if destination == str(V4_OTHER):
                forger.send(icmplib.ICMPRequest(destination, ident, seq))
            else:
                forger.send(icmplib.ICMPRequest(destination, ident ^ 0x5555, seq))
                forger.send(icmplib.ICMPRequest(destination, ident, seq + 7))
    finally:
        listener.close()
        forger.close()
        done.set()


def test_an_answer_to_another_request_is_ignored(node: Node) -> None:
    node.run(["sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1"])
    ready, done = threading.Event(), threading.Event()
    with node.entered():
        forging = threading.Thread(target=_forge_answers, args=(ready, done), daemon=True)
        forging.start()
        assert ready.wait(10)
        results = Pinger().round([V4_OTHER, V4], 1.0)
    assert done.wait(10)
    forging.join(10)

    assert results[0].up  # the forged answer that matches its request counts
    assert results[1] == NO_ANSWER  # the two that do not match it are ignored


_UNPRIVILEGED = """
import ipaddress, json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
from gardien.node.reachability import Pinger
targets = [ipaddress.ip_address(a) for a in sys.argv[1:]]
print(json.dumps([r.up for r in Pinger().round(targets, 1.0)]))
"""


def _round_without_raw_sockets(node: Node) -> tuple[list[bool], str]:
    argv = ["setpriv", "--bounding-set", "-net_raw", sys.executable, "-c", _UNPRIVILEGED]
    done = node.run([*argv, str(V4), str(V6)], cwd=str(Path(__file__).parents[2]))
    answered: Any = json.loads(done.stdout)
    return answered, done.stderr


def test_without_raw_sockets_the_kernels_ping_sockets_answer(node: Node) -> None:
    node.run(["sysctl", "-qw", "net.ipv4.ping_group_range=0 0"])  # root's group may use them

    answered, logged = _round_without_raw_sockets(node)

    assert answered == [True, True]
    assert "using the kernel's ping sockets" in logged


def test_without_raw_nor_ping_sockets_nothing_is_up_and_it_is_logged(node: Node) -> None:
    node.run(["sysctl", "-qw", "net.ipv4.ping_group_range=1 0"])  # the kernel's default: none

    answered, logged = _round_without_raw_sockets(node)

    assert answered == [False, False]
    assert "cannot open an ICMP socket for IPv4" in logged
    assert "cannot open an ICMP socket for IPv6" in logged
