"""SMB probe: list the files of one share in process (smbprotocol), or a server's shares with
Debian's ``smbclient``.

With ``share`` set, :mod:`gardien.probes.smb_session` does the whole exchange (negotiate, session
setup, tree connect, open, query directory) in the exporter's process: no child per check, and the
probe's ``timeout`` bounds it even against a frozen (SIGSTOPped) smbd, which still accepts the TCP
connection and never answers.  The anonymous login is the null session ``smbclient -N`` makes.

Without ``share`` the probe lists the server's shares, which needs the srvsvc NetShareEnumAll
DCE/RPC call over the ``IPC$`` pipe: smbprotocol has no DCE/RPC layer, so that form still runs
``smbclient -L`` under :class:`~gardien.command_runner.CommandRunner`, which kills its process group
at the deadline (smbclient hangs forever on a frozen smbd and its ``-t`` does not bound that,
docs/lab.md section 5).

Both forms read the same credentials file (``username =``, ``password =``, ``domain =`` lines):
smbclient through ``-A`` and the in-process client through
:func:`~gardien.probes.smb_session.read_credentials`; the password is never in an argv, a log or
a reason.  Without a file both log in anonymously.
"""

from __future__ import annotations

import importlib
import re
from typing import ClassVar

from pydantic import Field

from gardien.command_runner import CommandResult, CommandRunner
from gardien.probes.base import Probe, ProbeParams, ProbeResult
from gardien.probes.registry import register
from gardien.types import SecretFile

_NT_STATUS = re.compile(r"NT_STATUS_[A-Z0-9_]+")
_SHARE_LINE = re.compile(r"^(Disk|IPC|Printer|Device)\|([^|]*)\|")


class SmbParams(ProbeParams):
    server: str = Field(min_length=1, pattern=r"^[^/\\\s]+$")
    """Host name or address of the SMB server (usually the group's VIP)."""
    share: str | None = Field(default=None, min_length=1, pattern=r"^[^/\\]+$")
    """List the files of this share; without it, list the server's shares."""
    directory: str | None = None
    """Folder inside ``share`` to list (default: its root)."""
    credentials_file: SecretFile | None = None
    """Authentication file in smbclient's ``-A`` format (``username``/``password``/``domain``
    lines); a null session (anonymous, as ``smbclient -N``) without."""
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
        if params.share is not None:
            # smbprotocol and its crypto weigh a few MiB: loaded only for a share listing, when
            # the probe is built rather than within the budget of the first scrape
            importlib.import_module("gardien.probes.smb_session")

    def argv(self) -> list[str]:
        """smbclient's server listing (the one form that still forks, see the module docstring)."""
        p = self.params
        auth = ["-A", str(p.credentials_file)] if p.credentials_file else ["-N"]
        return ["smbclient", *auth, "-p", str(p.port), "-g", "-L", f"//{p.server}"]

    def check(self, timeout: float) -> ProbeResult:
        if self.params.share is not None:
            return self._list_share(self.params.share, timeout)
        result = self.runner.run(self.argv(), timeout)
        if not result.ok:
            return ProbeResult.failure(failure_reason(result))
        shares = [
            m.group(2) for line in result.stdout.splitlines() if (m := _SHARE_LINE.match(line))
        ]
        if not shares:
            return ProbeResult.failure("the server listed no shares")
        return ProbeResult.success(shares=len(shares))

    def _list_share(self, share: str, timeout: float) -> ProbeResult:
        from gardien.probes import smb_session  # noqa: PLC0415 - loaded by __init__

        p = self.params
        try:
            creds = smb_session.read_credentials(p.credentials_file) if p.credentials_file else None
        except (OSError, ValueError) as exc:
            return ProbeResult.failure(f"credentials file: {exc}")
        try:
            target = smb_session.ShareTarget(p.server, p.port, share, p.directory, creds)
            entries = smb_session.count_entries(target, timeout)
        except smb_session.ShareListingError as failed:
            return ProbeResult.failure(failed.reason)
        return ProbeResult.success(entries=entries)


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
