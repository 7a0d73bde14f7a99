"""Idle cost of each probe kind and node collector: CPU (self + children), wall time and processes
started per run, against real daemons started the way the probe tests start them.

    python3 benchmarks/probe_cost.py --runs 30      # from the repository root, as root

No lab: Apache, MariaDB and slapd listen on loopback; smbd and a standalone winbindd run on a test
node (a network namespace, ``tests/support/netns.py``) and the probes reach them through the node's
``nsenter`` prefix, as in tests/probes/test_smb.py and test_winbind.py (the prefix costs one exec,
no extra fork).  ``network`` pings four loopback addresses (one echo each, in one round on the
calling thread); ``volume`` and ``vip`` judge five groups (a tmpfs mounted as each volume, VIPs
absent on ``lo``); ``scrape`` is the volume and vip collectors of one scrape together, sharing its
readings as the runner makes them do.  CPU is this process's ``getrusage(RUSAGE_SELF)`` plus
``RUSAGE_CHILDREN`` (the children it reaped), forks are the processes started through
:mod:`subprocess` during the runs.  Each case runs once to warm up.  The rows named "replaced" run
what issue 14 replaced (a ping child per target, then a thread per target each sending its echo
through ``icmplib.ping``, the process tree from all of /proc, pymysql building a TLS context per
connection, smbclient listing a share) beside its replacement, and the ``--version`` rows show
what starting smbclient and wbinfo alone costs.  The in-process share listing connects from the
test node's network namespace (this thread enters it for the node's cases, ``Node.entered``),
where smbd listens.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import icmplib
import pymysql

import gardien.config  # first: import order of the config/probes cycle
from exporter.collectors.base import ScrapeFacts
from exporter.collectors.network import NetworkCollector
from exporter.collectors.vip import VipCollector
from exporter.collectors.volume import VolumeCollector
from gardien.command_runner import CommandRunner
from gardien.config import parse_config
from gardien.node import liveness
from gardien.node.reachability import IPAddress
from gardien.probes.base import Probe, ProbeParams
from gardien.probes.mysql import MysqlParams, MysqlProbe
from gardien.probes.registry import probe_kinds
from gardien_lab.daemons import apache
from gardien_lab.daemons.samba import Share, SmbdInstance
from gardien_lab.daemons.slapd import SlapdInstance
from gardien_lab.daemons.winbind import WinbinddInstance
from tests.probes.conftest import (
    free_port,
    running_apache,
    running_mariadb,
    start,
)
from tests.support.netns import Node

Run = Callable[[], object]
Case = tuple[str, Run]

_forks = 0
_execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]


def _counting_execute_child(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> Any:
    global _forks  # noqa: PLW0603 - the benchmark's one counter
    _forks += 1
    return _execute_child(self, *args, **kwargs)


subprocess.Popen._execute_child = _counting_execute_child  # type: ignore[attr-defined]


def cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def probe(kind: str, runner: CommandRunner | None = None, **params: object) -> Probe[ProbeParams]:
    cls: Any = probe_kinds()[kind]
    built = cls.params_model.model_validate(params)
    return cls(built, runner=runner) if runner is not None else cls(built)  # type: ignore[no-any-return]


def checked(p: Probe[ProbeParams]) -> Run:
    """``p.run`` that stops the benchmark when the probe fails (a failing check costs less)."""

    def run() -> None:
        result = p.run()
        if not result.ok:
            raise SystemExit(f"{p.kind} probe failed: {result.reason}")

    return run


def config(**sections: object) -> gardien.config.ClusterConfig:
    data = {"cluster": "bench", "nodes": {"n1": {"address": "127.0.0.1"}}, **sections}
    return parse_config(json.dumps(data))


@contextlib.contextmanager
def apache_cases(base: Path) -> Iterator[list[Case]]:
    with running_apache(base, "bench-http", {"health": "status: UP\n"}) as web:
        inst = web.inst
        url = f"http://{inst.address}:{inst.port}/health"
        yield [
            ("http", checked(probe("http", url=url, expect_regex="UP"))),
            ("tcp", checked(probe("tcp", host=inst.address, port=inst.port))),
            (
                "process (pidfile)",
                checked(probe("process", pidfile=str(inst.pidfile), min_children=1)),
            ),
            (
                "process (cmdline)",
                checked(probe("process", cmdline=str(inst.root / "conf"), min_children=1)),
            ),
            ("replaced: tree from all of /proc", lambda: liveness.descendants(master(inst))),
            ("its replacement: liveness.tree", lambda: liveness.tree(liveness_master(inst))),
        ]


def master(inst: apache.ApacheInstance) -> int:
    pid = liveness.pid_in_file(inst.pidfile)
    assert pid is not None
    return pid


def liveness_master(inst: apache.ApacheInstance) -> liveness.Process:
    process = liveness.read(master(inst))
    assert process is not None
    return process


@contextlib.contextmanager
def mysql_cases(base: Path) -> Iterator[list[Case]]:
    with running_mariadb(base, "bench-mysql") as (inst, creds):
        params = MysqlParams.model_validate(
            {"socket": str(inst.socket), "credentials_file": str(creds)}
        )
        yield [
            ("mysql", checked(MysqlProbe(params))),
            (
                "replaced: pymysql.connect (TLS context each)",
                checked(MysqlProbe(params, pymysql.connect)),
            ),
        ]


@contextlib.contextmanager
def ldap_cases(base: Path) -> Iterator[list[Case]]:
    inst = SlapdInstance(base_dir=base / "slapd", port=free_port("127.0.0.1"))
    inst.write_config()
    subprocess.run(inst.load_argv(), check=True, capture_output=True, timeout=30)
    daemon = start(inst.foreground_argv(), base / "slapd.out")
    try:
        inst.wait_ready()
        yield [("ldap", checked(probe("ldap", url=inst.url)))]
    finally:
        daemon.stop()


@contextlib.contextmanager
def node_cases(base: Path) -> Iterator[list[Case]]:
    """smbd and a standalone winbindd on one test node (each wants its own /run/samba)."""
    node = Node("bench")
    daemons: list[subprocess.Popen[bytes]] = []
    try:
        node.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=755", "tmpfs", "/run/samba"])
        (base / "pub" / "sub").mkdir(parents=True)
        for name in ("a.txt", "b.txt"):
            (base / "pub" / name).write_text("x")
        smbd = SmbdInstance(
            base_dir=base / "smbd",
            address="127.0.0.1",
            shares=(Share("pub", base / "pub", force_user="root"),),
        )
        smbd.write_config()
        winbindd = WinbinddInstance(base_dir=base / "wb")
        winbindd.write_config()
        for argv in (smbd.foreground_argv(), winbindd.foreground_argv()):
            out = subprocess.DEVNULL
            daemons.append(node.popen(argv, stdout=out, stderr=out))
        smbd.wait_ready(prefix=node.prefix())
        winbindd.wait_ready(prefix=node.prefix())

        def runner() -> CommandRunner:
            return CommandRunner(node.prefix())

        share = checked(probe("smb", server=LOCAL, share="pub"))
        with node.entered():  # the in-process share listing connects from the node's namespace
            yield [
                ("smb (server listing)", checked(probe("smb", runner(), server=LOCAL))),
                ("smb (share listing, in process)", share),
                ("replaced: smbclient share listing", smbclient_ls(runner(), "pub")),
                ("winbind (ping)", checked(probe("winbind", runner(), ping=True))),
                ("smbclient --version (start-up alone)", started(runner(), "smbclient")),
                ("wbinfo --version (start-up alone)", started(runner(), "wbinfo")),
            ]
    finally:
        node.destroy()
        for proc in daemons:
            proc.wait(timeout=10)


def smbclient_ls(runner: CommandRunner, share: str) -> Run:
    """What the smb probe ran for a share listing before issue 14: ``smbclient -c ls``."""
    argv = ["smbclient", "-N", "-p", "445", f"//{LOCAL}/{share}", "-c", "ls"]

    def run() -> None:
        if not runner.run(argv, 10).ok:
            raise SystemExit("smbclient share listing failed")

    return run


LOCAL = "127.0.0.1"
GROUPS = 5


def started(runner: CommandRunner, program: str) -> Run:
    return lambda: runner.run([program, "--version"], 10)


def thread_each(echo: Callable[[IPAddress], object], targets: list[IPAddress]) -> Run:
    """``echo(target)`` for every target at once, one thread each, as the Pinger did before."""

    def run() -> None:
        threads = [threading.Thread(target=echo, args=(t,), daemon=True) for t in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    return run


def ping_children(targets: list[IPAddress]) -> Run:
    """What the Pinger did before issue 14: one ``ping`` child per target, all at once."""
    runner = CommandRunner()
    argv = ["ping", "-n", "-c", "1", "-W", "1"]
    return thread_each(lambda t: runner.run([*argv, str(t)], 2.0), targets)


def icmplib_threads(targets: list[IPAddress]) -> Run:
    """What it did next: a thread per target, each one ``icmplib.ping`` (a raw socket each)."""
    return thread_each(lambda t: icmplib.ping(str(t), count=1, timeout=2.0), targets)


@contextlib.contextmanager
def collector_cases(base: Path) -> Iterator[list[Case]]:
    groups: dict[str, Any] = {}
    mounted: list[Path] = []
    try:
        for i in range(GROUPS):
            mountpoint = base / f"vol{i}"
            mountpoint.mkdir()
            device = f"/dev/gardien-bench-{i}"  # no such device: matched by source
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=1m", device, str(mountpoint)],
                check=True,
                timeout=30,
            )
            mounted.append(mountpoint)
            groups[f"g{i}"] = {
                "nodes": ["n1"],
                "volume": {"device": device, "mountpoint": str(mountpoint), "fstype": "tmpfs"},
                "vip": {"address": f"127.0.1.{i + 1}/8", "interface": "lo"},
            }
        targets = [f"127.0.0.{i + 1}" for i in range(4)]
        network = NetworkCollector(config(network={"interface": "lo", "internal": targets}))
        volume = VolumeCollector(config(groups=groups))
        vip = VipCollector(config(groups=groups), state_dir=base)

        def scrape() -> None:
            facts = ScrapeFacts()  # as the runner shares them within one scrape
            list(volume.collect(10, facts))
            list(vip.collect(10, facts))

        addresses = [ipaddress.ip_address(t) for t in targets]
        yield [
            ("network (4 targets)", lambda: list(network.collect(10))),
            ("replaced: 4 ping children", ping_children(addresses)),
            ("replaced: 4 threads, icmplib.ping each", icmplib_threads(addresses)),
            (f"volume ({GROUPS} groups)", lambda: list(volume.collect(10))),
            (f"vip ({GROUPS} groups)", lambda: list(vip.collect(10))),
            ("volume + vip (one scrape)", scrape),
        ]
    finally:
        for mountpoint in mounted:
            subprocess.run(["umount", str(mountpoint)], check=False, timeout=30)


def measure(run: Run, runs: int) -> tuple[float, float, float, float]:
    """CPU per run, median and max wall time per run (seconds), forks per run."""
    run()  # warm-up: connections, imports, caches
    walls = []
    forks_before, cpu_before = _forks, cpu()
    for _ in range(runs):
        started = time.perf_counter()
        run()
        walls.append(time.perf_counter() - started)
    return (
        (cpu() - cpu_before) / runs,
        statistics.median(walls),
        max(walls),
        (_forks - forks_before) / runs,
    )


SETS = {
    "apache": apache_cases,
    "mysql": mysql_cases,
    "ldap": ldap_cases,
    "node": node_cases,
    "collectors": collector_cases,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--only", nargs="+", choices=sorted(SETS), default=list(SETS))
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="gardien-probe-cost-"))
    base.chmod(0o755)  # the daemons run as their own users
    print("| probe / collector | CPU per run | wall median (max) | forks per run |")
    print("|---|---:|---:|---:|")
    try:
        for name in args.only:
            folder = base / name
            folder.mkdir()
            folder.chmod(0o755)
            with SETS[name](folder) as cases:
                for label, run in cases:
                    per_run, median, worst, forks = measure(run, args.runs)
                    print(
                        f"| {label} | {per_run * 1000:.2f} ms | {median * 1000:.2f} ms"
                        f" ({worst * 1000:.1f}) | {forks:.1f} |",
                        flush=True,
                    )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
