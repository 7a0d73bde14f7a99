"""The lab's machines and networks: network namespaces, bridges, holders (LAB.md sections 2 and 3).

Every machine of the lab (``node1``, ``node2``, ``client``, ``router``, ``mon``) is a network
namespace plus a *holder*: a ``sleep infinity`` started inside that netns which owns a private
mount and UTS namespace.  Commands run "on" a machine through ``nsenter -t HOLDER -m -u -n``, so
they see the machine's mounts (its volumes, its tmpfs on ``/run/samba``).  Two networks, each a
bridge in its own switch namespace: *public* (VIPs, node eth0, client, router) and *cluster* (node
eth1, mon).  The router carries addresses of the lab's "internal" and "external" subnets on links of
its own; the nodes reach them through the router's public address.

Network safety: every address is inside ``Lab.supernet`` (10.99.0.0/16), which exists only inside
these namespaces; while the lab exists the root namespace holds an ``unreachable`` route for the
whole supernet so a command run outside a namespace by mistake fails at once.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gardien.errors import GardienError

log = logging.getLogger(__name__)

LAB_ROOT = Path("/var/lib/gardien-lab")
"""One folder per lab instance: its state, volumes' images, generated configs, logs."""

NODES = ("node1", "node2")
MACHINES = (*NODES, "client", "router", "mon", "dc")
SWITCHES = ("public", "cluster")

# Per-node private directories: each node gets its own tmpfs there (wbinfo's fixed socket path,
# samba-dcerpcd's logs, MariaDB's default socket folder).
NODE_TMPFS = ("/run/samba", "/var/log/samba", "/run/mysqld")


class LabError(GardienError):
    """The lab could not be built, used or removed."""


def run(
    argv: Sequence[str], check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run a command of the lab's plumbing; a failure raises :class:`LabError` with its stderr."""
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(argv)}: no answer within {timeout:g} s") from exc
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    return done


@dataclass(frozen=True)
class Lab:
    """One lab instance: names, addresses and folders, all derived from ``name``."""

    name: str = "lab"
    supernet: ipaddress.IPv4Network = field(
        default_factory=lambda: ipaddress.IPv4Network("10.99.0.0/16")
    )
    root: Path = LAB_ROOT
    group_failed_for: str = "2s"
    """The ``for`` of GardienGroupFailed in the lab's rules (render's default, 3 s, is the
    production one).  The hook's gates (settle period, move in progress, anti-flap, one move per
    group) stop ping-pong (LAB.md 7); the ``for`` only filters probes that time out once on a
    loaded machine: at 1 s the lab's untouched groups moved under a load average of 11-20
    (docs/benchmarks.md), at 2 s not.  Read when the monitoring files are rendered."""

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

    def holder_file(self, machine: str) -> Path:
        return self.dir / "run" / f"{machine}.holder"

    def holder(self, machine: str) -> int | None:
        """PID of the machine's holder, or None when it is not running (checked, not trusted)."""
        try:
            pid = int(self.holder_file(machine).read_text())
        except (OSError, ValueError):
            return None
        return pid if _is_holder(pid, self.netns(machine)) else None

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


def _netns_inode(name: str) -> int | None:
    try:
        return os.stat(f"/run/netns/{name}").st_ino
    except OSError:
        return None


def _is_holder(pid: int, netns: str) -> bool:
    """``pid`` is alive (not a zombie), a ``sleep``, in netns ``netns`` (pid reuse: LAB.md 9.8)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/status").read_text()
        ns_inode = os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return False
    if "\nState:\tZ" in status or not cmdline or not cmdline[0].endswith(b"sleep"):
        return False
    return ns_inode == _netns_inode(netns)


def netns_exists(name: str) -> bool:
    return _netns_inode(name) is not None


# -- building ---------------------------------------------------------------------------------


def guard_supernet(lab: Lab) -> None:
    """Root namespace: an ``unreachable`` route for the lab's supernet (LAB.md section 2)."""
    run(["ip", "route", "replace", "unreachable", str(lab.supernet), "metric", "4000"])


def unguard_supernet(lab: Lab) -> None:
    """Remove the guard, unless another lab instance still exists."""
    others = (
        [p for p in lab.root.iterdir() if p.is_dir() and p.name != lab.name]
        if lab.root.is_dir()
        else []
    )
    if others:
        log.info(
            "keeping the route guard of %s: lab(s) %s still exist",
            lab.supernet,
            [p.name for p in others],
        )
        return
    run(["ip", "route", "del", "unreachable", str(lab.supernet), "metric", "4000"], check=False)


def _ensure_netns(name: str) -> None:
    if not netns_exists(name):
        run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def _link_exists(netns: str, ifname: str) -> bool:
    return run(["ip", "-n", netns, "link", "show", ifname], check=False).returncode == 0


def _ensure_bridge(lab: Lab, switch: str) -> None:
    ns = lab.switch_netns(switch)
    _ensure_netns(ns)
    if not _link_exists(ns, "br0"):
        run(["ip", "-n", ns, "link", "add", "br0", "type", "bridge"])
    run(["ip", "-n", ns, "link", "set", "br0", "up"])


def _ensure_port(
    lab: Lab,
    switch: str,
    machine: str,
    ifname: str,
    address: ipaddress.IPv4Address,
) -> None:
    """Plug ``machine`` into ``switch`` as ``ifname`` with ``address`` (idempotent)."""
    sw = lab.switch_netns(switch)
    ns = lab.netns(machine)
    port = f"p-{machine}"
    if not _link_exists(ns, ifname):
        run(["ip", "-n", sw, "link", "del", port], check=False)
        run(
            [
                "ip",
                "-n",
                sw,
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                ifname,
                "netns",
                ns,
            ]
        )
    run(["ip", "-n", sw, "link", "set", port, "master", "br0", "up"])
    run(["ip", "-n", ns, "addr", "replace", f"{address}/24", "dev", ifname])
    run(["ip", "-n", ns, "link", "set", ifname, "up"])


def _ensure_router(lab: Lab) -> None:
    ns = lab.netns("router")
    for ifname, subnet, targets in (
        ("internal", lab.internal, lab.internal_targets()),
        ("external", lab.external, lab.external_targets()),
    ):
        if not _link_exists(ns, ifname):
            # a veth pair inside the router stands for the network (no dummy driver on this kernel)
            run(
                [
                    "ip",
                    "-n",
                    ns,
                    "link",
                    "add",
                    ifname,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    f"{ifname}-end",
                ]
            )
        for target in targets:
            run(["ip", "-n", ns, "addr", "replace", f"{target}/{subnet.prefixlen}", "dev", ifname])
        run(["ip", "-n", ns, "link", "set", f"{ifname}-end", "up"])
        run(["ip", "-n", ns, "link", "set", ifname, "up"])


def _ensure_routes(lab: Lab, machine: str) -> None:
    """Nodes and client reach the router's subnets through its public address."""
    gateway = str(lab.public_address("router"))
    for subnet in (lab.internal, lab.external):
        run(["ip", "-n", lab.netns(machine), "route", "replace", str(subnet), "via", gateway])


def _start_holder(lab: Lab, machine: str) -> int:
    """Start the machine's holder (detached: it outlives ``gardien lab up``)."""
    ns = lab.netns(machine)
    holder = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            ns,
            "unshare",
            "-m",
            "-u",
            "--propagation",
            "slave",
            "sh",
            "-c",
            f"hostname {machine}; exec sleep infinity",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    pid = holder.pid
    deadline = time.monotonic() + 5
    while not _is_holder(pid, ns) or os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink(
        "/proc/self/ns/mnt"
    ):
        if holder.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"the holder of {machine} did not start")
        time.sleep(0.01)
    lab.holder_file(machine).parent.mkdir(parents=True, exist_ok=True)
    lab.holder_file(machine).write_text(f"{pid}\n")
    return pid


def _ensure_tmpfs(lab: Lab, machine: str) -> None:
    """The machine's own tmpfs on each of ``NODE_TMPFS``, recognised by its source name (a mount
    copied from the root namespace at that path would be shared with the other nodes)."""
    source = f"lab-{machine}"
    mounts = Path(f"/proc/{lab.require_holder(machine)}/mounts").read_text().splitlines()
    mine = {fields[1] for fields in (line.split() for line in mounts) if fields[0] == source}
    prefix = lab.prefix_argv(machine)
    for path in NODE_TMPFS:
        if path not in mine:
            run([*prefix, "mkdir", "-p", path])
            run([*prefix, "mount", "-t", "tmpfs", "-o", "size=32m,mode=755", source, path])


def ensure_machine(lab: Lab, machine: str) -> int:
    """The machine's netns and holder exist (the holder is the machine being "powered on")."""
    _ensure_netns(lab.netns(machine))
    pid = lab.holder(machine)
    if pid is None:
        pid = _start_holder(lab, machine)
        log.info("%s: holder %d", machine, pid)
    if machine in (*NODES, "dc"):
        _ensure_tmpfs(lab, machine)
    return pid


def ensure_network(lab: Lab, machine: str) -> None:
    """Links, addresses and routes of ``machine`` (idempotent; also brings downed links back up)."""
    if machine in NODES:
        _ensure_port(lab, "public", machine, "eth0", lab.public_address(machine))
        _ensure_port(lab, "cluster", machine, "eth1", lab.cluster_address(machine))
        _ensure_routes(lab, machine)
    elif machine == "client":
        _ensure_port(lab, "public", machine, "eth0", lab.public_address(machine))
        _ensure_routes(lab, machine)
    elif machine == "router":
        _ensure_port(lab, "public", machine, "eth0", lab.public_address(machine))
        _ensure_router(lab)
    elif machine == "dc":
        _ensure_port(lab, "public", machine, "eth0", lab.public_address(machine))
    elif machine == "mon":
        _ensure_port(lab, "cluster", machine, "eth0", lab.cluster_address(machine))


def build(lab: Lab) -> None:
    """Every namespace, bridge, link, address, route and holder of the lab (idempotent)."""
    lab.dir.mkdir(parents=True, exist_ok=True)
    guard_supernet(lab)
    for switch in SWITCHES:
        _ensure_bridge(lab, switch)
    for machine in MACHINES:
        ensure_machine(lab, machine)
        ensure_network(lab, machine)


# -- tearing down -----------------------------------------------------------------------------


def _pids_in_mount_ns(ns_link: str, exclude: int | None = None) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != exclude:
            with contextlib.suppress(OSError):
                if os.readlink(entry / "ns" / "mnt") == ns_link:
                    found.append(int(entry.name))
    return found


def _pids_in_netns(netns: str) -> list[int]:
    if not netns_exists(netns):
        return []
    out = run(["ip", "netns", "pids", netns], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def machine_processes(lab: Lab, machine: str, include_holder: bool = False) -> list[int]:
    """Every process of a machine: in its netns or in its holder's mount namespace."""
    pids = set(_pids_in_netns(lab.netns(machine)))
    holder = lab.holder(machine)
    if holder is not None:
        with contextlib.suppress(OSError):
            pids.update(_pids_in_mount_ns(os.readlink(f"/proc/{holder}/ns/mnt")))
    pids.discard(os.getpid())
    if not include_holder and holder is not None:
        pids.discard(holder)
    return sorted(pids)


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def kill_machine(
    lab: Lab, machine: str, grace: float = 3.0, include_holder: bool = True
) -> list[int]:
    """TERM (after CONT: a stopped process acts on TERM only then), then KILL, every process of
    ``machine``; with the holder gone its mount namespace and every mount in it vanish.
    Returns the PIDs still alive (empty on success)."""
    signals = (
        ((signal.SIGTERM, grace), (signal.SIGKILL, 3.0)) if grace > 0 else ((signal.SIGKILL, 3.0),)
    )
    for sig, wait in signals:
        pids = machine_processes(lab, machine, include_holder)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
    return [p for p in machine_processes(lab, machine, include_holder) if _alive(p)]


def set_links(lab: Lab, machine: str, up: bool, names: Sequence[str] = ("eth0", "eth1")) -> None:
    ns = lab.netns(machine)
    for ifname in names:
        if _link_exists(ns, ifname):
            run(["ip", "-n", ns, "link", "set", ifname, "up" if up else "down"])


def teardown(lab: Lab) -> list[str]:
    """Kill every process of every machine, delete every namespace; returns what is left."""
    problems = []
    for machine in MACHINES:
        left = kill_machine(lab, machine, grace=2.0)
        if left:
            problems.append(f"{machine}: processes {left} survived SIGKILL")
    for ns in lab.all_netns():
        if netns_exists(ns):
            for pid in _pids_in_netns(ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            run(["ip", "netns", "del", ns], check=False)
            if netns_exists(ns):
                problems.append(f"network namespace {ns} could not be deleted")
    for machine in MACHINES:
        lab.holder_file(machine).unlink(missing_ok=True)
    return problems


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
    return pid if same_ns and _alive(pid) else None


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
