"""The campaign's clients: rows committed to mysql1 and mysql2 and files written to php4's share,
through the VIPs from the lab's ``client`` machine (:mod:`gardien_lab.chaos.writer`), and the audit
at the end: every acknowledged row read back through the VIP, every acknowledged file read from
the volume on the node that holds it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gardien_lab import services
from gardien_lab.netns import run
from gardien_lab.topology import Lab

MYSQL_GROUPS = ("mysql1", "mysql2")
SMB_GROUP = "php4"


@dataclass
class Audit:
    """Acknowledged writes per target and those missing at the end (the goal: none)."""

    acknowledged: dict[str, int] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """What could not be audited (a target that did not answer): a violation too."""


def _port(group: services.LabGroup) -> int:
    return int(group.services[0].probes[0]["mysql"]["port"])


class Writers:
    """Starts the writers on ``client`` for at most ``limit`` s; :meth:`stop` ends them."""

    def __init__(self, lab: Lab, folder: Path, limit: float) -> None:
        self.lab = lab
        self.folder = folder
        self.limit = limit
        self.groups = services.lab_groups(lab)
        self.procs: list[subprocess.Popen[bytes]] = []

    def out(self, target: str) -> Path:
        return self.folder / f"writes-{target}.txt"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        writer = [sys.executable, "-m", "gardien_lab.chaos.writer", "--limit", f"{self.limit:g}"]
        argvs = [
            [*writer, "mysql", str(self.groups[g].vip.ip), str(_port(self.groups[g])),
             str(services.client_credentials(self.lab)), str(self.out(g))]
            for g in MYSQL_GROUPS
        ]  # fmt: skip
        argvs.append(
            [
                *writer,
                "smb",
                str(self.groups[SMB_GROUP].vip.ip),
                SMB_GROUP,
                str(self.out(SMB_GROUP)),
            ]
        )
        for target in (*MYSQL_GROUPS, SMB_GROUP):
            self.out(target).unlink(missing_ok=True)
            self.out(target).with_name(self.out(target).name + ".stop").unlink(missing_ok=True)
        log = (self.folder / "writers.log").open("ab")
        for argv in argvs:
            self.procs.append(
                subprocess.Popen(
                    [*self.lab.prefix_argv("client"), *argv],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
            )

    def stop(self) -> None:
        for target in (*MYSQL_GROUPS, SMB_GROUP):
            self.out(target).with_name(self.out(target).name + ".stop").touch()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def _acknowledged(self, target: str) -> list[str]:
        path = self.out(target)
        return path.read_text().splitlines() if path.exists() else []

    def _rows(self, group: str) -> set[str] | None:
        g = self.groups[group]
        argv = [
            "mariadb", f"--defaults-file={services.client_credentials(self.lab)}",
            "-h", str(g.vip.ip), "-P", str(_port(g)), "--connect-timeout=5", "-N", "-B",
            "-e", "SELECT id, v FROM lab.rows WHERE v LIKE 'chaos-%'",
        ]  # fmt: skip
        done = run([*self.lab.prefix_argv("client"), *argv], check=False, timeout=60)
        if done.returncode != 0:
            return None
        return {" ".join(line.split("\t")) for line in done.stdout.splitlines()}

    def audit(self, holder: dict[str, str]) -> Audit:
        """``holder``: the node each group runs on now (the volume the files are read from)."""
        result = Audit()
        for group in MYSQL_GROUPS:
            acked = self._acknowledged(group)
            result.acknowledged[group] = len(acked)
            found = self._rows(group)
            if found is None:
                result.problems.append(f"{group}: the rows could not be read through its VIP")
                continue
            result.missing[group] = [row for row in acked if row not in found]
        acked = self._acknowledged(SMB_GROUP)
        result.acknowledged[SMB_GROUP] = len(acked)
        node = holder.get(SMB_GROUP)
        if node is None:
            result.problems.append(f"{SMB_GROUP}: runs on no single node, its files not read")
            return result
        share = self.lab.fs_root(node) / self.groups[SMB_GROUP].mountpoint.lstrip("/") / "share"
        result.missing[SMB_GROUP] = [
            name for name in acked if _content(share / name) != name + "\n"
        ]
        return result


def _content(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None
