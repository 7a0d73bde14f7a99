"""The lab's machines and networks by name and address, and the lab's own daemons on them
(docs/lab.md sections 2 and 3).

Every machine of the lab (``node1``, ``node2``, ``client``, ``router``, ``mon``, ``dc``) is a
network namespace plus a holder (:mod:`gardien_lab.netns`): commands run "on" a machine see its
mounts (its volumes, its tmpfs on ``/run/samba``).  Two networks, each a bridge in its own switch
namespace: *public* (VIPs, node eth0, client, router) and *cluster* (node eth1, mon).  The router
carries addresses of the lab's "internal" and "external" subnets on links of its own; the nodes
reach them through the router's public address.  :mod:`gardien_lab.machines` builds them.

Network safety: every address is inside ``Lab.supernet`` (10.99.0.0/16), which exists only inside
these namespaces; while the lab exists the root namespace holds an ``unreachable`` route for the
whole supernet so a command run outside a namespace by mistake fails at once.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gardien_lab import made
from gardien_lab.netns import LabError, alive, run

log = logging.getLogger(__name__)

LAB_ROOT = Path("/var/lib/gardien-lab")
"""One folder per lab instance: its state, volumes' images, generated configs, logs."""

NODES = ("node1", "node2")
MACHINES = (*NODES, "client", "router", "mon", "dc")
SWITCHES = ("public", "cluster")

SAN_LINKS = "/run/gardien-lab-san"
"""Where each node sees its own loop device of every group's image, under the same name on both
nodes, as a SAN's ``/dev/disk/by-id`` (:mod:`gardien_lab.volumes`)."""

# Per-node private directories: each node gets its own tmpfs there (wbinfo's fixed socket path,
# samba-dcerpcd's logs, MariaDB's default socket folder, the SAN's device names).
NODE_TMPFS = ("/run/samba", "/var/log/samba", "/run/mysqld", SAN_LINKS)


@dataclass(frozen=True)
class Lab:
    """One lab instance: names, addresses and folders, all derived from ``name``."""

    name: str = "lab"
    supernet: ipaddress.IPv4Network = field(
        default_factory=lambda: ipaddress.IPv4Network("10.99.0.0/16")
    )
    root: Path = LAB_ROOT
    group_failed_for: str = "0s"
    """The ``for`` of GardienGroupFailed in the lab's rules (render's default, 3 s, is the
    production one).  None: the target's hook confirms the failure on the group's node before
    moving (``hook.confirm_failure``), so a probe that fails once moves nothing; the hook's gates
    (settle period, move in progress, anti-flap, one move per group) stop ping-pong (docs/lab.md
    section 7).  Each second of ``for`` is a second of outage (docs/alerting.md "How fast, and
    what it costs").  Read when the monitoring files are rendered."""
    scrape_interval: str = "250ms"
    """How often Prometheus scrapes the exporters and hooks (``gardien render prometheus
    --scrape-interval``); each scrape may take 90 % of it.  The fast setting of docs/benchmarks.md
    "The fast path" (render's default, 1 s, is where production starts); the slow or expensive
    probes run on a schedule of their own (``every``, gardien_lab/services.py), bounded by their
    own timeouts, so that a loaded node's slow share listing is not a failure.  Read when the
    files are rendered."""
    evaluation_interval: str = "250ms"
    """How often Prometheus evaluates the rules.  Read when the files are rendered."""
    restart_attempts: int = 0
    """Restarts in place of each group service (``restart.attempts``, per 10 min) in the lab's
    config: 0, a failed service moves its group at once (benchmarks/lab_restart.py sets it).
    Read when the config is written."""
    move_window: str = "10m"
    """The hooks' anti-flap ``window`` in the lab's config (``max_moves`` moves per window);
    ``gardien lab chaos`` shortens it for its run.  Read when the config is written."""

    @property
    def timing(self) -> str:
        """The monitoring settings a measurement depends on, for people."""
        return (
            f"scrape every {self.scrape_interval}, rules every {self.evaluation_interval}, "
            f"GardienGroupFailed for {self.group_failed_for}"
        )

    @property
    def dir(self) -> Path:
        return self.root / self.name

    @property
    def prefix(self) -> str:
        """Namespace name prefix: none for the default lab (``node1``...), ``NAME-`` otherwise."""
        return "" if self.name == "lab" else f"{self.name}-"

    def netns(self, machine: str) -> str:
        return f"{self.prefix}{machine}"

    def switch_netns(self, switch: str) -> str:
        return f"{self.prefix}sw-{switch}"

    def all_netns(self) -> list[str]:
        return [self.netns(m) for m in MACHINES] + [self.switch_netns(s) for s in SWITCHES]

    def _subnet(self, index: int) -> ipaddress.IPv4Network:
        base = int(self.supernet.network_address) + (index << 8)
        return ipaddress.IPv4Network((base, 24))

    def _host(self, index: int, host: int) -> ipaddress.IPv4Address:
        return self._subnet(index).network_address + host

    @property
    def public(self) -> ipaddress.IPv4Network:
        return self._subnet(1)

    @property
    def cluster(self) -> ipaddress.IPv4Network:
        return self._subnet(2)

    @property
    def internal(self) -> ipaddress.IPv4Network:
        """Subnet the router plays as the site's internal network."""
        return self._subnet(3)

    @property
    def external(self) -> ipaddress.IPv4Network:
        """Subnet the router plays as the outside world."""
        return self._subnet(4)

    def public_address(self, machine: str) -> ipaddress.IPv4Address:
        hosts = {"node1": 11, "node2": 12, "client": 100, "router": 254, "dc": 5}
        return self._host(1, hosts[machine])

    def cluster_address(self, machine: str) -> ipaddress.IPv4Address:
        hosts = {"node1": 11, "node2": 12, "mon": 2}
        return self._host(2, hosts[machine])

    def vip(self, host: int) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface(f"{self._host(1, host)}/24")

    def internal_targets(self) -> list[ipaddress.IPv4Address]:
        return [self._host(3, 1), self._host(3, 2)]

    def external_targets(self) -> list[ipaddress.IPv4Address]:
        return [self._host(4, 1), self._host(4, 2)]

    # -- machines -----------------------------------------------------------------------------

    def holder(self, machine: str) -> int | None:
        """PID of the machine's holder, or None when it is not running: the holder this lab
        made (by pid and start time, in the machine's namespace), checked, not trusted."""
        holder = made.load(self.dir).holders.get(machine)
        return holder.pid if holder and holder.runs_in(self.netns(machine)) else None

    def require_holder(self, machine: str) -> int:
        pid = self.holder(machine)
        if pid is None:
            raise LabError(f"{machine} of lab {self.name!r} is not running (try 'gardien lab up')")
        return pid

    def prefix_argv(self, machine: str) -> list[str]:
        """argv prefix that runs a command on ``machine`` (its netns, mount and UTS namespaces)."""
        return ["nsenter", "-t", str(self.require_holder(machine)), "-m", "-u", "-n", "--"]

    def fs_root(self, machine: str) -> Path:
        """The machine's filesystem as seen from here (``/proc/HOLDER/root``)."""
        return Path(f"/proc/{self.require_holder(machine)}/root")


# -- daemons of the lab itself (exporter, hook, Prometheus...) ---------------------------------


def log_file(lab: Lab, machine: str, name: str) -> Path:
    return lab.dir / "logs" / f"{machine}-{name}.log"


def _pid_file(lab: Lab, machine: str, name: str) -> Path:
    return lab.dir / "run" / f"{machine}-{name}.pid"


def running(lab: Lab, machine: str, name: str) -> int | None:
    """PID of the lab daemon ``name`` on ``machine`` if it runs there (checked, not trusted)."""
    try:
        pid = int(_pid_file(lab, machine, name).read_text())
        holder = lab.require_holder(machine)
        same_ns = os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink(f"/proc/{holder}/ns/mnt")
    except (OSError, ValueError, LabError):
        return None
    return pid if same_ns and alive(pid) else None


def spawn(
    lab: Lab, machine: str, name: str, argv: Sequence[str], env: dict[str, str] | None = None
) -> int:
    """Start ``argv`` on ``machine`` detached (own session, output to its log); idempotent."""
    pid = running(lab, machine, name)
    if pid is not None:
        return pid
    out = log_file(lab, machine, name)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("ab") as stream:
        proc = subprocess.Popen(
            [*lab.prefix_argv(machine), *argv],
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    _pid_file(lab, machine, name).parent.mkdir(parents=True, exist_ok=True)
    _pid_file(lab, machine, name).write_text(f"{proc.pid}\n")
    log.info("%s: %s started (pid %d, log %s)", machine, name, proc.pid, out)
    return proc.pid


def on(
    lab: Lab, machine: str, argv: Sequence[str], check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run a command on ``machine`` and wait for it."""
    return run([*lab.prefix_argv(machine), *argv], check=check, timeout=timeout)


PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093


def prometheus_url(lab: Lab) -> str:
    return f"http://{lab.cluster_address('mon')}:{PROMETHEUS_PORT}"


def alertmanager_url(lab: Lab) -> str:
    return f"http://{lab.cluster_address('mon')}:{ALERTMANAGER_PORT}"
