"""A standalone smbd sharing folders on one address (docs/lab.md section 5).

Every path smbd and its on-demand helpers use (lock, state, cache, private, pid, ncalrpc dirs,
logs) lives under the instance's ``base_dir``, so several instances never share state.  Two things
still are host-wide and must be private to the node the instance runs on (a tmpfs on
``/run/samba`` in the node's mount namespace does it): the winbindd socket ``wbinfo`` talks to,
and the detached ``samba-dcerpcd`` smbd spawns for share listings; that helper outlives smbd and is
found through ``<pid dir>/samba-dcerpcd.pid`` or by sweeping the node's mount namespace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gardien_lab.daemons import Prefix, seen_from, wait_ready, write_file


@dataclass(frozen=True)
class Share:
    name: str
    path: Path
    guest_ok: bool = True
    read_only: bool = False
    valid_users: tuple[str, ...] = ()
    """When set, only these users may connect (guests are then refused)."""
    force_user: str | None = None
    """Unix user every file access runs as (e.g. when guests cannot traverse the path)."""


def private_dirs(base_dir: Path) -> dict[str, Path]:
    """smb.conf directory options -> their folder under ``base_dir`` (shared with winbindd)."""
    return {
        "lock directory": base_dir / "lock",
        "state directory": base_dir / "state",
        "cache directory": base_dir / "cache",
        "private dir": base_dir / "private",
        "pid directory": base_dir / "run",
        "ncalrpc dir": base_dir / "run" / "ncalrpc",
        "binddns dir": base_dir / "bind-dns",
    }


def global_lines(options: dict[str, str]) -> str:
    return "".join(f"  {key} = {value}\n" for key, value in options.items())


_NO_PRINTING = {
    "load printers": "no",
    "printing": "bsd",
    "printcap name": "/dev/null",
    "disable spoolss": "yes",
}


@dataclass(frozen=True)
class SmbdInstance:
    """One smbd, ``server role = standalone server``, listening on ``address:port`` only."""

    base_dir: Path
    address: str
    shares: tuple[Share, ...] = ()
    port: int = 445
    netbios_name: str = "GARDIEN"
    workgroup: str = "GARDIEN"
    extra: dict[str, str] = field(default_factory=dict)
    """More ``[global]`` options (they override the recipe's)."""

    @property
    def conf(self) -> Path:
        return self.base_dir / "smb.conf"

    @property
    def pid_file(self) -> Path:
        return self.base_dir / "run" / "smbd.pid"

    def config_text(self) -> str:
        options = {
            "server role": "standalone server",
            "workgroup": self.workgroup,
            "netbios name": self.netbios_name,
            "interfaces": self.address,
            "bind interfaces only": "yes",
            "smb ports": str(self.port),
            "disable netbios": "yes",
            "map to guest": "Bad User",
            "passdb backend": f"tdbsam:{self.base_dir / 'private' / 'passdb.tdb'}",
            "log file": str(self.base_dir / "log" / "smbd.log"),
            "max log size": "1000",
            **{key: str(path) for key, path in private_dirs(self.base_dir).items()},
            **_NO_PRINTING,
            **self.extra,
        }
        text = "[global]\n" + global_lines(options)
        for share in self.shares:
            text += f"[{share.name}]\n  path = {share.path}\n"
            text += f"  guest ok = {'yes' if share.guest_ok else 'no'}\n"
            text += f"  read only = {'yes' if share.read_only else 'no'}\n"
            if share.valid_users:
                text += f"  valid users = {' '.join(share.valid_users)}\n"
            if share.force_user:
                text += f"  force user = {share.force_user}\n"
        return text

    def write_config(self, fs_root: Path = Path("/")) -> Path:
        """Write smb.conf and create every folder it names; returns the conf path."""
        for path in (*private_dirs(self.base_dir).values(), self.base_dir / "log"):
            seen_from(fs_root, path).mkdir(parents=True, exist_ok=True)
        seen_from(fs_root, self.base_dir / "private").chmod(0o700)
        for share in self.shares:
            folder = seen_from(fs_root, share.path)
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o777)
        write_file(seen_from(fs_root, self.conf), self.config_text())
        return self.conf

    def foreground_argv(self, prefix: Prefix = ()) -> list[str]:
        """smbd in the foreground, in the caller's process group (for a supervisor)."""
        return [*prefix, "smbd", "--foreground", "--no-process-group", "-s", str(self.conf)]

    def daemon_argv(self, prefix: Prefix = ()) -> list[str]:
        """smbd daemonized (a cluster service's ``start`` command); pid in :attr:`pid_file`."""
        return [*prefix, "smbd", "-D", "-s", str(self.conf)]

    def stop_argv(self, prefix: Prefix = ()) -> list[str]:
        return [*prefix, "smbcontrol", "-s", str(self.conf), "smbd", "shutdown"]

    def add_user_argv(self, user: str, prefix: Prefix = ()) -> list[str]:
        """``smbpasswd -a`` for an existing Unix user; feed ``password\\npassword\\n`` on stdin."""
        return [*prefix, "smbpasswd", "-c", str(self.conf), "-s", "-a", user]

    def ready_argv(self, prefix: Prefix = ()) -> list[str]:
        """Exits 0 once smbd answers an anonymous share listing (not just a TCP connect)."""
        return [
            *prefix,
            "smbclient",
            "-s",
            str(self.conf),
            "-N",
            "-g",
            "-p",
            str(self.port),
            "-L",
            f"//{self.address}",
        ]

    def wait_ready(self, timeout: float = 15.0, prefix: Prefix = ()) -> None:
        wait_ready(self.ready_argv(prefix), timeout, f"smbd on {self.address}:{self.port}")
