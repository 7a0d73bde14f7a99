"""SMB probe: list a server's shares, or the files of one share, with Debian's ``smbclient``.

Why smbclient rather than a pure-Python client (smbprotocol): listing shares needs the srvsvc
DCE/RPC call that smbprotocol does not offer, smbclient speaks exactly the dialects and
authentication the Samba servers we watch are configured for, and a child process can be killed at
the deadline whereas a Python thread stuck in a read cannot.  smbclient hangs forever on a frozen
(SIGSTOPped) smbd and its ``-t`` does not bound that (docs/lab.md section 5), so it always runs
under :class:`~gardien.command_runner.CommandRunner`, which kills its process group at the deadline.
A TCP connect succeeds on a frozen smbd: only the server's answer proves it serves.

Credentials are read by smbclient from the ``-A`` file (``username =``, ``password =``,
``domain =`` lines); they never appear in argv.  Without a file the probe connects anonymously
(``-N``).
"""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field

from gardien.command_runner import CommandResult, CommandRunner
from gardien.probes.base import Probe, ProbeParams, ProbeResult
from gardien.probes.registry import register
from gardien.types import SecretFile

_NT_STATUS = re.compile(r"NT_STATUS_[A-Z0-9_]+")
_SHARE_LINE = re.compile(r"^(Disk|IPC|Printer|Device)\|([^|]*)\|")
# "  name    D   0  Tue Nov 24 23:58:14 2026": attributes, size, then the date
_LS_LINE = re.compile(r"^  (.*?)\s+[A-Z]*\s+\d+\s+\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$")


class SmbParams(ProbeParams):
    server: str = Field(min_length=1, pattern=r"^[^/\\\s]+$")
    """Host name or address of the SMB server (usually the group's VIP)."""
    share: str | None = Field(default=None, min_length=1, pattern=r"^[^/\\]+$")
    """List the files of this share; without it, list the server's shares."""
    directory: str | None = None
    """Folder inside ``share`` to list (default: its root)."""
    credentials_file: SecretFile | None = None
    """smbclient authentication file (``username``/``password``/``domain``); anonymous without."""
    port: int = Field(445, ge=1, le=65535)


@register
class SmbProbe(Probe[SmbParams]):
    kind = "smb"
    params_model = SmbParams
    values: ClassVar[dict[str, str]] = {
        "shares": "Shares the server listed (server listing only).",
        "entries": "Files and folders listed in the share, without . and .. (share listing only).",
    }

    def __init__(self, params: SmbParams, runner: CommandRunner | None = None) -> None:
        super().__init__(params)
        self.runner = runner or CommandRunner()

    def argv(self) -> list[str]:
        p = self.params
        auth = ["-A", str(p.credentials_file)] if p.credentials_file else ["-N"]
        if p.share is None:
            return ["smbclient", *auth, "-p", str(p.port), "-g", "-L", f"//{p.server}"]
        where = ["-D", p.directory] if p.directory else []
        return [
            "smbclient",
            *auth,
            "-p",
            str(p.port),
            f"//{p.server}/{p.share}",
            *where,
            "-c",
            "ls",
        ]

    def check(self, timeout: float) -> ProbeResult:
        result = self.runner.run(self.argv(), timeout)
        if not result.ok:
            return ProbeResult.failure(failure_reason(result))
        if self.params.share is None:
            shares = [
                m.group(2) for line in result.stdout.splitlines() if (m := _SHARE_LINE.match(line))
            ]
            if not shares:
                return ProbeResult.failure("the server listed no shares")
            return ProbeResult.success(shares=len(shares))
        names = [m.group(1) for line in result.stdout.splitlines() if (m := _LS_LINE.match(line))]
        return ProbeResult.success(entries=len([n for n in names if n not in (".", "..")]))


def failure_reason(result: CommandResult) -> str:
    """A short reason from a failed smbclient run: its NT status when it printed one."""
    if result.error:
        return result.error
    if result.timed_out:
        return "smbclient did not finish in time (killed)"
    status = _NT_STATUS.search(result.output)
    if status:
        return status.group(0)
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    return f"smbclient exited {result.returncode}" + (f": {lines[-1][:200]}" if lines else "")
