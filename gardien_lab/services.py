"""The lab's groups: which real daemons each one runs, from its volume, on its VIP.

* ``php4``, ``php5``: an Apache serving a page from the volume, a Samba server sharing the volume;
* ``mysql1``, ``mysql2``: one MariaDB each, own datadir on the volume, own port and socket;
* ``java``: a Tomcat serving a webapp from its volume.

Every file a service needs (config, data, pid file, socket) lives on the group's volume, so the
start and stop commands of the cluster config work on whichever node mounted it; they run
without a prefix because the agent that runs them already lives inside the node.  Where each
group starts is :mod:`gardien_lab.placement`'s.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gardien.types import parse_duration
from gardien_lab import volumes
from gardien_lab.daemons import apache, mariadb, samba, tomcat, wait_ready
from gardien_lab.netns import LabError, run
from gardien_lab.topology import Lab

log = logging.getLogger(__name__)

PAGE = "check.html"
"""The page whose content the http probes and the tests check (it lives on the volume)."""


def content_every(lab: Lab) -> dict[str, str]:
    """The ``every`` of the content probes (the page over HTTP, MariaDB's login and query): once
    a second at the lab's sub-second scrapes, at every scrape otherwise.  Each group's process
    probes run at every scrape and see a crash or a stopped process at once; what only a content
    probe sees (a wrong page, a server that accepts nothing) is seen up to a second later.  At
    250 ms scrapes, the 3 http and 2 mysql probes of a node at every scrape cost 1.3-1.6 % of a
    core more (docs/benchmarks.md "Idle cost on the lab, per daemon"), and a login or a page
    slower than the scrape's budget under load read failed (a probe with ``every`` is bounded
    by its own timeout, exporter/runner.py); a stale result right after a move is masked by the
    group's settling."""
    return {"every": "1s"} if parse_duration(lab.scrape_interval) < 1 else {}


def page_text(group: str) -> str:
    return f"gardien lab {group}: volume OK\n"


@dataclass(frozen=True)
class LabService:
    name: str
    start: list[str]
    stop: list[str]
    process: dict[str, Any]
    probes: list[dict[str, Any]]
    start_timeout: float = 20.0
    """Lab-sized (the engine's release/acquire budget is the sum of these and ``stop_timeout``)."""
    stop_timeout: float = 10.0


@dataclass(frozen=True)
class LabGroup:
    name: str
    nodes: tuple[str, str]
    """Preference order; the first one runs the group after ``lab up``."""
    vip: ipaddress.IPv4Interface
    mountpoint: str
    services: tuple[LabService, ...]
    prepare: Callable[[Path, Sequence[str]], None]
    """Lays out and seeds a fresh volume, mounted on a node without the group's VIP: (node's
    filesystem as seen from here, argv prefix of the node)."""
    client_checks: tuple[list[str], ...]
    """argvs run on the client machine: each exits 0 when one of the group's services answers on
    its VIP (php's page and its Samba share: a group answers when all of them do)."""


def secrets_dir(lab: Lab) -> Path:
    return lab.dir / "secrets"


def node_state_dir(lab: Lab, node: str) -> Path:
    """The node's ``--state-dir`` (journal, held groups) for its hook and exporter."""
    return lab.dir / node / "state"


def mysql_credentials(lab: Lab, group: str) -> Path:
    return secrets_dir(lab) / f"{group}.cnf"


def client_credentials(lab: Lab) -> Path:
    """Option file of the ``lab`` database user the client and the tests use."""
    return secrets_dir(lab) / "client.cnf"


def page_check(url: str, group: str) -> list[str]:
    """argv exiting 0 when ``url`` answers with the group's page (its content from the volume)."""
    return [
        "sh",
        "-c",
        'curl -fsS -m 2 "$1" | grep -q "$2"',
        "page-check",
        url,
        f"{group}: volume OK",
    ]


def _php(lab: Lab, group: str, vip_host: int, nodes: tuple[str, str]) -> LabGroup:
    mnt = volumes.mountpoint(lab, group)
    vip = lab.vip(vip_host)
    www = apache.ApacheInstance(
        name=group,
        root=Path(mnt) / "apache",
        address=str(vip.ip),
        status_from=("127.0.0.1", str(lab.public)),
    )
    smb = samba.SmbdInstance(
        base_dir=Path(mnt) / "samba",
        address=str(vip.ip),
        netbios_name=group.upper(),
        shares=(samba.Share(name=group, path=Path(mnt) / "share", force_user="root"),),
    )

    def prepare(fs_root: Path, _prefix: Sequence[str]) -> None:
        apache.write_config(
            www, {"index.html": f"gardien lab {group}\n", PAGE: page_text(group)}, fs_root=fs_root
        )
        smb.write_config(fs_root=fs_root)

    services = (
        LabService(
            name=f"apache-{group}",
            start=apache.start_argv(www),
            stop=apache.stop_argv(www),
            process={"pidfile": str(www.pidfile), "min_children": 1},
            probes=[
                {
                    "http": {
                        "url": f"http://{vip.ip}/{PAGE}",
                        "expect_regex": f"{group}: volume OK",
                        "timeout": "2s",
                        **content_every(lab),
                    }
                }
            ],
        ),
        LabService(
            name=f"samba-{group}",
            start=smb.daemon_argv(),
            stop=smb.stop_argv(),
            process={"pidfile": str(smb.pid_file)},
            # the share listing (10 ms of CPU) each 2 s, not at every scrape: a crash or a stop
            # of smbd is its process probe's to see, at every scrape (docs/alerting.md)
            probes=[
                {"smb": {"server": str(vip.ip), "share": group, "timeout": "3s", "every": "2s"}}
            ],
        ),
    )
    share_check = ["timeout", "5", "smbclient", f"//{vip.ip}/{group}", "-N", "-t", "3", "-c", "ls"]
    checks = (page_check(www.url + PAGE, group), share_check)
    return LabGroup(group, nodes, vip, mnt, services, prepare, checks)


def _mysql(lab: Lab, group: str, vip_host: int, port: int, nodes: tuple[str, str]) -> LabGroup:
    mnt = volumes.mountpoint(lab, group)
    vip = lab.vip(vip_host)
    db = mariadb.MariadbInstance(
        name=group, root=Path(mnt) / "mariadb", address=str(vip.ip), port=port
    )
    credentials = mysql_credentials(lab, group)

    def prepare(fs_root: Path, prefix: Sequence[str]) -> None:
        mariadb.write_config(db, fs_root=fs_root)
        run(mariadb.install_db_argv(db, prefix), timeout=120)
        # the users and the lab's table, the server on its socket only: the VIP is not up yet,
        # and the agent's start ends only once the probe's user logs in
        run([*mariadb.start_argv(db, prefix), "--skip-networking"], timeout=30)
        try:
            wait_ready(mariadb.ready_argv(db, prefix), 30, f"{group} laid out on its socket")
            seed(prefix)
        finally:
            run(mariadb.stop_argv(db, prefix, grace=20), timeout=60)

    def seed(prefix: Sequence[str]) -> None:
        password = secrets.token_hex(12)
        mariadb.run_sql(
            db,
            (
                f"CREATE USER IF NOT EXISTS 'gardien'@'%' IDENTIFIED BY '{password}';\n"
                "GRANT USAGE ON *.* TO 'gardien'@'%';\n"
                "CREATE DATABASE IF NOT EXISTS lab;\n"
                "CREATE TABLE IF NOT EXISTS lab.rows"
                " (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64));\n"
                "CREATE USER IF NOT EXISTS 'lab'@'%' IDENTIFIED BY 'lab';\n"
                "GRANT ALL ON lab.* TO 'lab'@'%';\n"
            ),
            prefix=prefix,
        )
        credentials.parent.mkdir(parents=True, exist_ok=True)
        credentials.touch(mode=0o600)
        credentials.write_text(f"[client]\nuser=gardien\npassword={password}\n")

    probe: dict[str, Any] = {
        "host": str(vip.ip),
        "port": port,
        "credentials_file": str(credentials),
        "timeout": "2s",
        **content_every(lab),
    }
    services = (
        LabService(
            name=group,
            start=mariadb.start_argv(db),
            stop=mariadb.stop_argv(db, grace=20),
            process={"pidfile": str(db.pidfile)},
            probes=[{"mysql": probe}],
        ),
    )
    check = [
        "mariadb",
        f"--defaults-file={client_credentials(lab)}",
        "-h",
        str(vip.ip),
        "-P",
        str(port),
        "--connect-timeout=2",
        "-e",
        "SELECT COUNT(*) FROM lab.rows",
    ]
    return LabGroup(group, nodes, vip, mnt, services, prepare, (check,))


def _java(lab: Lab, group: str, vip_host: int, nodes: tuple[str, str]) -> LabGroup:
    mnt = volumes.mountpoint(lab, group)
    vip = lab.vip(vip_host)
    cat = tomcat.TomcatInstance(name=group, base=Path(mnt) / "tomcat", address=str(vip.ip))

    def prepare(fs_root: Path, _prefix: Sequence[str]) -> None:
        tomcat.write_config(
            cat,
            {"index.html": f"gardien lab {group}\n", "health": "UP\n", PAGE: page_text(group)},
            fs_root=fs_root,
        )

    services = (
        LabService(
            name="tomcat",
            start=tomcat.start_argv(cat),
            stop=tomcat.stop_argv(cat),
            process={"pidfile": str(cat.pidfile)},
            probes=[
                {
                    "http": {
                        "url": f"http://{vip.ip}:{cat.port}/{PAGE}",
                        "expect_regex": f"{group}: volume OK",
                        "timeout": "3s",
                        **content_every(lab),
                    }
                }
            ],
            start_timeout=60.0,
        ),
    )
    checks = (page_check(cat.url + PAGE, group),)
    return LabGroup(group, nodes, vip, mnt, services, prepare, checks)


def lab_groups(lab: Lab) -> dict[str, LabGroup]:
    groups = [
        _php(lab, "php4", 41, ("node1", "node2")),
        _php(lab, "php5", 42, ("node2", "node1")),
        _mysql(lab, "mysql1", 51, 3306, ("node1", "node2")),
        _mysql(lab, "mysql2", 52, 3307, ("node2", "node1")),
        _java(lab, "java", 61, ("node2", "node1")),
    ]
    return {g.name: g for g in groups}


# -- where a group runs -----------------------------------------------------------------------


def vip_holders(lab: Lab, group: LabGroup, nodes: Sequence[str]) -> list[str]:
    found = []
    for node in nodes:
        if lab.holder(node) is None:
            continue
        out = run(
            ["ip", "-n", lab.netns(node), "-o", "addr", "show", "dev", "eth0"], check=False
        ).stdout
        if f" {group.vip.ip}/" in out:
            found.append(node)
    return found


def where(lab: Lab, group: LabGroup, nodes: Sequence[str]) -> list[str]:
    """Nodes holding any part of the group (its volume mounted or its VIP)."""
    held = set(vip_holders(lab, group, nodes))
    held.update(volumes.holders(lab, group.name, nodes))
    return sorted(held)


def answers_from_client(lab: Lab, group: LabGroup) -> bool:
    """Every service of ``group`` answers on its VIP from the client."""
    return all(_answers(lab, check) for check in group.client_checks)


def _answers(lab: Lab, check: list[str]) -> bool:
    try:
        return run([*lab.prefix_argv("client"), *check], check=False, timeout=10).returncode == 0
    except LabError:  # no answer within the timeout (smbclient waits forever on a stopped smbd)
        return False
