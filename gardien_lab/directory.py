"""The lab's Windows domain: a Samba AD DC on the ``dc`` machine and winbindd on each node, the
node service every node runs (not moved, still probed and alerted on).

The DC is provisioned once (about 4 s) and its generated administrator password is kept in an
authentication file (never in argv).  Each node gets its own ``/etc/hosts`` (naming the DC) and
an empty ``resolv.conf`` bind-mounted in its mount namespace, joins the domain once (retried: a
join fails for seconds after the DC starts, docs/lab.md section 5) and runs a member winbindd.  When
the DC cannot be provisioned or started, the nodes fall back to a standalone winbindd (it answers
pings, resolves no domain user) and the node service's probe is reduced to a ping.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gardien.errors import GardienError
from gardien_lab.daemons.winbind import DomainController, WinbinddInstance
from gardien_lab.netns import LabError, run
from gardien_lab.services import secrets_dir
from gardien_lab.topology import NODES, Lab, on, running, spawn

log = logging.getLogger(__name__)

DOMAIN = "GARDIEN"
REALM = "GARDIEN.TEST"
PROBE_USER = f"{DOMAIN}\\administrator"


def controller(lab: Lab) -> DomainController:
    return DomainController(
        base_dir=lab.dir / "dc",
        address=str(lab.public_address("dc")),
        realm=REALM,
        domain=DOMAIN,
        host_name="dc",
    )


MEMBER_DIR = Path("/run/samba/gardien-winbind")
"""On the node's private /run/samba tmpfs: the same path on every node (so one config's pid file
fits both), gone when the node is powered off (it joins again when powered on)."""


def member(lab: Lab, node: str, joined: bool) -> WinbinddInstance:
    return WinbinddInstance(
        base_dir=MEMBER_DIR,
        netbios_name=node.upper(),
        workgroup=DOMAIN,
        realm=REALM if joined else None,
        dc_host=controller(lab).fqdn if joined else None,
        address=str(lab.public_address(node)),
    )


def admin_auth(lab: Lab) -> Path:
    return secrets_dir(lab) / "dc-admin.auth"


def _domain_marker(lab: Lab) -> Path:
    """Present while the lab has a working domain (the nodes are members)."""
    return lab.dir / "dc" / ".domain-ok"


def has_domain(lab: Lab) -> bool:
    return _domain_marker(lab).exists()


def start_controller(lab: Lab) -> bool:
    """Provision (once) and run the DC; False when it cannot (the nodes then run standalone)."""
    dc = controller(lab)
    prefix = lab.prefix_argv("dc")
    try:
        if not dc.conf.exists():
            done = run(dc.provision_argv(prefix), timeout=180)
            dc.write_auth_file(admin_auth(lab), dc.admin_password(done.stdout + done.stderr))
            dc.finish_config()
        if running(lab, "dc", "samba") is None:
            spawn(lab, "dc", "samba", dc.foreground_argv())
        dc.wait_ready(timeout=60, prefix=prefix)
    except (GardienError, ValueError, OSError) as exc:
        log.warning("no AD DC in the lab (%s): the nodes run a standalone winbindd", exc)
        return False
    return True


def _node_files(lab: Lab, node: str, with_dc: bool) -> None:
    """The node's own /etc/hosts (naming the DC) and resolv.conf (no DNS), bind-mounted once."""
    folder = lab.dir / node / "etc"
    folder.mkdir(parents=True, exist_ok=True)
    hosts = f"127.0.0.1 localhost\n127.0.1.1 {node}\n"
    if with_dc:
        hosts += controller(lab).hosts_line()
    (folder / "hosts").write_text(hosts)
    (folder / "resolv.conf").write_text("# gardien lab: no DNS server (names are in /etc/hosts)\n")
    mounts = Path(f"/proc/{lab.require_holder(node)}/mounts").read_text()
    for name in ("hosts", "resolv.conf"):
        if f" /etc/{name} " not in mounts:
            on(lab, node, ["mount", "--bind", str(folder / name), f"/etc/{name}"])


def start_member(lab: Lab, node: str, with_dc: bool) -> None:
    """winbindd on ``node``: a domain member when the DC runs, else standalone."""
    _node_files(lab, node, with_dc)
    inst = member(lab, node, joined=with_dc)
    prefix = lab.prefix_argv(node)
    inst.write_config(fs_root=lab.fs_root(node))
    joined = lab.fs_root(node) / str(MEMBER_DIR / ".joined").lstrip("/")
    if with_dc and not joined.exists():
        inst.join(admin_auth(lab), timeout=60, prefix=prefix)
        joined.touch()
    spawn(lab, node, "winbindd", inst.foreground_argv())
    inst.wait_ready(timeout=60, prefix=prefix)


def start(lab: Lab) -> None:
    """The DC (when possible) and winbindd on every node that is on."""
    with_dc = start_controller(lab)
    try:
        for node in NODES:
            if lab.holder(node) is not None:
                start_member(lab, node, with_dc)
    except GardienError as exc:
        if not with_dc:
            raise
        raise LabError(f"winbind members of the lab's domain: {exc}") from exc
    if with_dc:
        _domain_marker(lab).touch()
    else:
        _domain_marker(lab).unlink(missing_ok=True)


def node_service(lab: Lab) -> dict[str, Any]:
    """The ``node_services`` entry of the lab's config for winbind."""
    check: dict[str, Any] = {"via": "winbindd", "ping": True, "timeout": "2s"}
    probes = [{"winbind": check}]
    if has_domain(lab):
        check["user"] = PROBE_USER
        # the trust check asks the DC: every 30 s, not on every scrape (docs/config.md)
        trust = {"name": "trust", "via": "winbindd", "trust": True, "every": "30s", "timeout": "2s"}
        probes.append({"winbind": trust})
    pidfile = MEMBER_DIR / "run" / "winbindd.pid"
    return {"name": "winbind", "process": {"pidfile": str(pidfile)}, "probes": probes}
