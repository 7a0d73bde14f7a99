"""winbind probe against real daemons on test nodes.

Two NSS sources: a standalone winbindd (ping, plus NSS lookups of a node-local user through
``getent``: libnss-winbind is not installed here, so NSS cannot reach winbind), and a real Samba AD
DC with a joined member whose winbindd resolves domain users and checks the trust (``via:
winbindd``); taking the DC off the network must fail the trust check within the probe's budget.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gardien.command_runner import CommandRunner
from gardien.probes.winbind import WinbindParams, WinbindProbe
from gardien_lab.daemons.winbind import DomainController, WinbinddInstance
from gardien_lab.freeze import freeze
from tests.support.netns import Node, Switch, have_root_and_netns

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not have_root_and_netns(), reason="needs root, ip and nsenter"),
]

LOCAL_USER = "gardienwb"
LOCAL_UID = 64124


def probe_on(node: Node, **params: object) -> tuple[WinbindProbe, CommandRunner]:
    runner = CommandRunner(node.prefix(), record=True)
    params.setdefault("timeout", 10)
    return WinbindProbe(WinbindParams.model_validate(params), runner=runner), runner


def private_run_samba(node: Node) -> None:
    """wbinfo only knows /run/samba/winbindd/pipe: give the node its own /run/samba."""
    node.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=755", "tmpfs", "/run/samba"])


def bind_file(node: Node, path: Path, target: str) -> None:
    path.chmod(0o644)
    node.run(["mount", "--bind", str(path), target])


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass(frozen=True)
class Standalone:
    node: Node
    winbindd: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    tmp = tmp_path_factory.mktemp("winbind")
    node = Node("wb")
    proc: subprocess.Popen[bytes] | None = None
    try:
        private_run_samba(node)
        passwd = tmp / "passwd"
        passwd.write_text(
            Path("/etc/passwd").read_text()
            + f"{LOCAL_USER}:x:{LOCAL_UID}:65534::/nonexistent:/usr/sbin/nologin\n"
        )
        bind_file(node, passwd, "/etc/passwd")
        instance = WinbinddInstance(base_dir=tmp / "wb")
        instance.write_config()
        proc = node.popen(
            instance.foreground_argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        instance.wait_ready(prefix=node.prefix())
        yield Standalone(node, proc)
    finally:
        if proc is not None:
            stop_daemon(proc)
        node.destroy()


def test_ping_and_nss_lookups(standalone: Standalone) -> None:
    probe, runner = probe_on(
        standalone.node, user=LOCAL_USER, uid=LOCAL_UID, group="nogroup", ping=True
    )
    result = probe.run()
    assert result.ok, result.reason
    assert result.values == {
        "ping_ok": 1,
        "user_resolved": 1,
        "uid_resolved": 1,
        "group_resolved": 1,
    }
    assert [r.argv[-3:] for r in runner.results][1:] == [
        ("getent", "passwd", LOCAL_USER),
        ("getent", "passwd", str(LOCAL_UID)),
        ("getent", "group", "nogroup"),
    ]


def test_unknown_user_fails(standalone: Standalone) -> None:
    result = probe_on(standalone.node, user="nosuchuser", ping=True)[0].run()
    assert not result.ok
    assert result.reason == "user nosuchuser: not found"
    assert result.values == {"ping_ok": 1, "user_resolved": 0}


def test_trust_fails_without_a_domain(standalone: Standalone) -> None:
    result = probe_on(standalone.node, trust=True)[0].run()
    assert not result.ok
    assert result.values == {"trust_ok": 0}
    assert result.reason.startswith("domain trust: ")


def test_frozen_winbindd_fails_within_the_timeout(standalone: Standalone) -> None:
    probe, runner = probe_on(standalone.node, ping=True, user=LOCAL_USER, timeout=2)
    freeze(standalone.winbindd.pid)
    try:
        result = probe.run()
    finally:
        os.kill(standalone.winbindd.pid, signal.SIGCONT)
    assert not result.ok
    assert result.values["ping_ok"] == 0
    assert "winbindd ping: no answer in time (killed)" in result.reason
    for ran in runner.results:
        assert not Path(f"/proc/{ran.pid}").exists()
    assert probe_on(standalone.node, ping=True)[0].run().ok


def test_no_winbindd_fails(tmp_path: Path) -> None:
    node = Node("wbnone")
    try:
        private_run_samba(node)
        result = probe_on(node, ping=True)[0].run()
    finally:
        node.destroy()
    assert not result.ok
    assert result.values == {"ping_ok": 0}


@dataclass(frozen=True)
class Domain:
    switch: Switch
    dc: Node
    member: Node
    dc_config: DomainController


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Domain]:
    """A Samba AD DC and a member node whose winbindd joined it."""
    tmp = tmp_path_factory.mktemp("addc")
    switch = Switch()
    made: list[Node] = []
    daemons: list[subprocess.Popen[bytes]] = []
    try:
        dc, member = Node("dc", hostname="dc1"), Node("member", hostname="member1")
        made += [dc, member]
        dc_addr, member_addr = switch.plug(dc).ip, switch.plug(member).ip
        for node in made:
            private_run_samba(node)
        controller = DomainController(
            base_dir=tmp / "dc", address=str(dc_addr), realm="GTEST.TEST", domain="GTEST"
        )
        provision = dc.run(controller.provision_argv(), timeout=120)
        auth = controller.write_auth_file(
            tmp / "admin.auth", controller.admin_password(provision.stdout + provision.stderr)
        )
        controller.finish_config()
        daemons.append(
            dc.popen(
                controller.foreground_argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        controller.wait_ready(prefix=dc.prefix())

        hosts = tmp / "hosts"
        hosts.write_text("127.0.0.1 localhost\n" + controller.hosts_line())
        bind_file(member, hosts, "/etc/hosts")
        resolv = tmp / "resolv.conf"
        resolv.write_text(f"nameserver {dc_addr}\n")
        bind_file(member, resolv, "/etc/resolv.conf")
        winbindd = WinbinddInstance(
            base_dir=tmp / "member",
            netbios_name="MEMBER1",
            workgroup="GTEST",
            realm="GTEST.TEST",
            dc_host=controller.fqdn,
            address=str(member_addr),
        )
        winbindd.write_config()
        winbindd.join(auth, timeout=60, prefix=member.prefix())
        daemons.append(
            member.popen(
                winbindd.foreground_argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        winbindd.wait_ready(timeout=30, prefix=member.prefix())
        yield Domain(switch, dc, member, controller)
    finally:
        for proc in reversed(daemons):
            stop_daemon(proc)
        for node in made:
            node.destroy()
        switch.destroy()


@pytest.mark.slow
def test_domain_user_group_and_trust(domain: Domain) -> None:
    probe, _ = probe_on(
        domain.member,
        via="winbindd",
        user="GTEST\\administrator",
        group="GTEST\\domain users",
        ping=True,
        trust=True,
    )
    result = probe.run()
    assert result.ok, result.reason
    assert result.values == {"ping_ok": 1, "user_resolved": 1, "group_resolved": 1, "trust_ok": 1}


@pytest.mark.slow
def test_unknown_domain_user_fails(domain: Domain) -> None:
    result = probe_on(domain.member, via="winbindd", user="GTEST\\nobody-here")[0].run()
    assert not result.ok
    assert result.values == {"user_resolved": 0}


@pytest.mark.slow
def test_dc_gone_fails_the_trust_within_the_timeout(domain: Domain) -> None:
    """wbinfo -t takes ~18 s to fail without a DC; the probe gives up at its deadline."""
    probe, runner = probe_on(domain.member, ping=True, trust=True, timeout=3)
    domain.dc.run(["ip", "link", "set", "eth0", "down"])
    try:
        result = probe.run()
    finally:
        domain.dc.run(["ip", "link", "set", "eth0", "up"])
    assert not result.ok
    assert result.values == {"ping_ok": 1, "trust_ok": 0}, result.reason
    assert result.reason == "domain trust: no answer in time (killed)"
    assert all(not Path(f"/proc/{r.pid}").exists() for r in runner.results)
