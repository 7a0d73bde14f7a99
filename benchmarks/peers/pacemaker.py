"""Pacemaker + Corosync on the peers' lab: a Filesystem + IPaddr2 + apache group.

As measured for docs/lab.md section 10: Corosync 3 (knet, no crypto, ``two_node``) on the
cluster switch, ``corosync -f`` then ``tini -s -- pacemakerd`` on each node (tini reaps the
Apache the agent daemonizes: a zombie parent makes the agent's stop fail), each node's Corosync
and Pacemaker state bind-mounted from its own folder.  The CIB: no STONITH,
``no-quorum-policy=ignore``, ``resource-stickiness=0``, ``migration-threshold=1`` (a failed
resource moves at once), the group preferring pr-a (score 100: a cleanup brings it home).
``monitors``: ``1s`` (every resource's monitor every second) or ``default`` (each agent's
advertised interval: 20 s, 10 s, 10 s); the operation timeouts are the agents' advertised ones
in both.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

from benchmarks.peers.lab import (
    DIR,
    MOUNTPOINT,
    NODES,
    VIP,
    PeersLab,
    apache_on_volume,
    cluster_address,
    node_dir,
    seed_volume,
    undo,
)
from gardien.polling import wait_until
from gardien_lab import netns
from gardien_lab.daemons import apache

NAME = "pacemaker"
HOME = NODES[0]
BINDS = ("/etc/corosync", "/var/lib/corosync", "/var/lib/pacemaker")
LOGS = ("/var/log/corosync", "/var/log/pacemaker")
MONITORS = {"1s": ("1s", "1s", "1s"), "default": ("20s", "10s", "10s")}
"""Monitor intervals of fs1, vip1, web1."""
APACHE_CONF = DIR / "apache-pcmk.conf"
"""The agent reads Apache's config on both nodes, also where the volume is not mounted."""


def corosync_conf() -> str:
    """One key per line: corosync's parser rejects ``node { key: value`` on one line."""
    nodes = "".join(
        f"  node {{\n    ring0_addr: {cluster_address(n).ip}\n"
        f"    name: {n}\n    nodeid: {i}\n  }}\n"
        for i, n in enumerate(NODES, 1)
    )
    return (
        "totem {\n  version: 2\n  cluster_name: peers\n  transport: knet\n"
        "  crypto_cipher: none\n  crypto_hash: none\n}\n"
        f"nodelist {{\n{nodes}}}\n"
        "quorum {\n  provider: corosync_votequorum\n  two_node: 1\n}\n"
        "logging {\n  to_logfile: yes\n  logfile: /var/log/corosync/corosync.log\n"
        "  to_syslog: no\n  timestamp: on\n}\n"
    )


def _primitive(
    rid: str, agent: str, params: dict[str, str], ops: dict[str, tuple[str, str]]
) -> str:
    attrs = "".join(f'<nvpair id="{rid}-{k}" name="{k}" value="{v}"/>' for k, v in params.items())
    operations = "".join(
        f'<op id="{rid}-{name}" name="{name}" interval="{interval}" timeout="{timeout}"/>'
        for name, (interval, timeout) in ops.items()
    )
    return (
        f'<primitive id="{rid}" class="ocf" provider="heartbeat" type="{agent}">'
        f'<instance_attributes id="{rid}-ia">{attrs}</instance_attributes>'
        f"<operations>{operations}</operations></primitive>"
    )


def group_xml(device: str, monitors: str) -> str:
    fs_every, vip_every, web_every = MONITORS[monitors]
    fs = _primitive(
        "fs1",
        "Filesystem",
        {"device": device, "directory": str(MOUNTPOINT), "fstype": "ext4"},
        {"monitor": (fs_every, "40s"), "start": ("0s", "60s"), "stop": ("0s", "60s")},
    )
    vip = _primitive(
        "vip1",
        "IPaddr2",
        {"ip": str(VIP.ip), "cidr_netmask": str(VIP.network.prefixlen), "nic": "eth0"},
        {"monitor": (vip_every, "20s"), "start": ("0s", "20s"), "stop": ("0s", "20s")},
    )
    web = _primitive(
        "web1",
        "apache",
        {
            "configfile": str(APACHE_CONF),
            "httpd": apache.APACHE,
            "statusurl": "http://127.0.0.1/server-status",
        },
        {"monitor": (web_every, "20s"), "start": ("0s", "40s"), "stop": ("0s", "60s")},
    )
    return f'<group id="g1">{fs}{vip}{web}</group>'


def _prepare_node(lab: PeersLab, node: str) -> None:
    base = node_dir(node)
    (base / "etc-corosync").mkdir(parents=True, exist_ok=True)
    (base / "etc-corosync" / "corosync.conf").write_text(corosync_conf())
    (base / "var-lib-corosync").mkdir(exist_ok=True)
    netns.run(["cp", "-a", "/var/lib/pacemaker", str(base / "var-lib-pacemaker")])
    for log in LOGS:
        (base / Path(log).name).mkdir(exist_ok=True)
    shutil.chown(base / "pacemaker", "hacluster", "haclient")
    sources = ("etc-corosync", "var-lib-corosync", "var-lib-pacemaker", "corosync", "pacemaker")
    for source, point in zip(sources, (*BINDS, *LOGS), strict=True):
        lab.run(node, ["mount", "--bind", str(base / source), point])


def _nvpairs(set_id: str, values: dict[str, str]) -> str:
    return "".join(f'<nvpair id="{set_id}-{k}" name="{k}" value="{v}"/>' for k, v in values.items())


def configure(lab: PeersLab, monitors: str) -> None:
    """The cluster options, the resource defaults, the group and its home, all through the CIB
    (cibadmin: crm_attribute needs the controller, not up yet on a cold start); resources first:
    a constraint naming an unknown group fails the schema."""
    options = {"stonith-enabled": "false", "no-quorum-policy": "ignore"}
    defaults = {"resource-stickiness": "0", "migration-threshold": "1"}
    home = f'<rsc_location id="g1-home" rsc="g1" node="{HOME}" score="100"/>'
    for section, xml in (
        ("crm_config", f'<cluster_property_set id="peers">{_nvpairs("peers", options)}'
         "</cluster_property_set>"),
        ("configuration", f'<rsc_defaults><meta_attributes id="peers-defaults">'
         f'{_nvpairs("peers-defaults", defaults)}</meta_attributes></rsc_defaults>'),
        ("resources", group_xml(lab.device, monitors)),
        ("constraints", home),
    ):  # fmt: skip
        lab.run(HOME, ["cibadmin", "-C", "-o", section, "-X", xml], timeout=60)


def _succeeds(lab: PeersLab, node: str, argv: list[str]) -> bool:
    return lab.run(node, argv, check=False).returncode == 0


def start(lab: PeersLab, monitors: str = "1s", timeout: float = 120) -> None:
    """The stack on both nodes, configured, the group served from pr-a (a cold start waits
    for the controller's election, ~20 s)."""
    inst = apache_on_volume()
    seed_volume(lab, inst)
    APACHE_CONF.parent.mkdir(parents=True, exist_ok=True)
    APACHE_CONF.write_text(apache.config_text(inst))
    for node in NODES:
        _prepare_node(lab, node)
        lab.spawn(node, ["corosync", "-f"], node_dir(node) / "corosync.out")
    for node in NODES:
        quorate = functools.partial(_succeeds, lab, node, ["corosync-quorumtool", "-s"])
        if not wait_until(quorate, 30):
            raise TimeoutError(f"corosync on {node} not quorate within 30 s")
        lab.spawn(node, ["tini", "-s", "--", "pacemakerd"], node_dir(node) / "pacemakerd.out")
    if not wait_until(functools.partial(_succeeds, lab, HOME, ["cibadmin", "-Q", "-l"]), 60):
        raise TimeoutError("Pacemaker's CIB does not answer on pr-a within 60 s")
    configure(lab, monitors)
    if not wait_until(lambda: lab.served_from(HOME), timeout, interval=0.5):
        raise TimeoutError(f"the group is not served from {HOME} within {timeout:.0f} s")


def restore(lab: PeersLab, node: str, timeout: float = 120) -> bool:
    """``node`` healthy again (link up, a stopped Apache resumed), failures cleaned up, and
    the group served from it again (its location score brings it home)."""
    undo(lab, node, apache_on_volume())
    lab.run(HOME, ["crm_resource", "--cleanup"], check=False, timeout=60)
    return wait_until(lambda: lab.served_from(node), timeout, interval=0.2)


def pidfile_instance(node: str) -> apache.ApacheInstance:
    """The Apache the faults act on (its pid file on the volume, where the node mounts it)."""
    del node
    return apache_on_volume()
