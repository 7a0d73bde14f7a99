"""Winbind probe: resolve a domain user (and/or uid, group) and optionally ping winbindd and check
the domain trust.

Lookups go through NSS by default (``getent``: what the services on the node see, through
nsswitch.conf and libnss-winbind), or straight to winbindd with ``via: winbindd`` (``wbinfo``), for
nodes where NSS does not use winbind.  ``getent`` rather than Python's ``pwd``/``grp``: an NSS
lookup stuck on a dead winbindd would block the probe's thread for good, a child process is killed
at the deadline.  Every command runs under :class:`~gardien.command_runner.CommandRunner`
(``wbinfo -t`` takes about 18 s to fail when the DC is gone: docs/lab.md section 5), and all of them
share the probe's budget: a check that gets no time left fails as "not run".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, ModelWrapValidatorHandler, model_validator

from gardien.command_runner import CommandResult, CommandRunner
from gardien.probes.base import Probe, ProbeParams, ProbeResult
from gardien.probes.registry import register

_NOT_FOUND = 2
"""getent's exit status for "no such key" (wbinfo exits 1 for everything)."""

WBINFO_EVERY = 10.0
"""Default ``every`` of a probe that runs ``wbinfo``: each run starts one wbinfo per check, and
one costs about 20 ms of CPU however quickly winbindd answers (loading Samba's libraries: a
``wbinfo --version`` costs the same), 2 % of a core at a 1 s scrape interval; every 10 s it is
0.2 % (docs/benchmarks.md "Idle cost per probe").  winbind is a node service: a failure alerts,
it moves no group, so 10 s more before the alert is the better trade.  NSS lookups alone
(``getent``, under 1 ms) run on every scrape."""


class WinbindParams(ProbeParams):
    user: str | None = Field(default=None, min_length=1)
    """A user to resolve, e.g. ``INTRANET\\svc-probe``."""
    uid: int | None = Field(default=None, ge=0)
    """A uid to resolve to a user."""
    group: str | None = Field(default=None, min_length=1)
    """A group to resolve, e.g. ``INTRANET\\domain users``."""
    via: Literal["nss", "winbindd"] = "nss"
    """Resolve through NSS (``getent``) or by asking winbindd directly (``wbinfo``)."""
    ping: bool = False
    """Also check that winbindd answers (``wbinfo -p``)."""
    trust: bool = False
    """Also check the trust to the domain (``wbinfo -t``: asks a DC)."""

    @model_validator(mode="wrap")
    @classmethod
    def _wbinfo_on_its_own_schedule(
        cls, data: Any, handler: ModelWrapValidatorHandler[Self]
    ) -> Self:
        """``every`` defaults to :data:`WBINFO_EVERY` when a check runs wbinfo (``every: null``
        asks for every scrape)."""
        params = handler(data)
        runs_wbinfo = params.ping or params.trust or params.via == "winbindd"
        if runs_wbinfo and "every" not in params.model_fields_set:
            return params.model_copy(update={"every": WBINFO_EVERY})
        return params

    @model_validator(mode="after")
    def _something_to_check(self) -> Self:
        if not (self.user or self.uid is not None or self.group or self.ping or self.trust):
            raise ValueError("give at least one of 'user', 'uid', 'group', 'ping', 'trust'")
        return self


_Check = tuple[str, list[str], str, Callable[[CommandResult], bool]]


@register
class WinbindProbe(Probe[WinbindParams]):
    kind = "winbind"
    params_model = WinbindParams
    values: ClassVar[dict[str, str]] = {
        "ping_ok": "1 when winbindd answered a ping (ping checks only).",
        "trust_ok": "1 when the trust to the domain was verified (trust checks only).",
        "user_resolved": "1 when the user was found (user checks only).",
        "uid_resolved": "1 when the uid was found (uid checks only).",
        "group_resolved": "1 when the group was found (group checks only).",
    }

    def __init__(self, params: WinbindParams, runner: CommandRunner | None = None) -> None:
        super().__init__(params)
        self.runner = runner or CommandRunner()

    def checks(self) -> list[_Check]:
        """(value name, argv, what it is about, success test), cheapest first."""
        p = self.params
        nss = p.via == "nss"
        found = _found_by_getent if nss else _found_by_wbinfo
        checks: list[_Check] = []
        if p.ping:
            checks.append(("ping_ok", ["wbinfo", "-p"], "winbindd ping", _found_by_wbinfo))
        if p.user:
            argv = ["getent", "passwd", p.user] if nss else ["wbinfo", "-i", p.user]
            checks.append(("user_resolved", argv, f"user {p.user}", found))
        if p.uid is not None:
            argv = ["getent", "passwd", str(p.uid)] if nss else ["wbinfo", "-U", str(p.uid)]
            checks.append(("uid_resolved", argv, f"uid {p.uid}", found))
        if p.group:
            argv = ["getent", "group", p.group] if nss else ["wbinfo", "--group-info", p.group]
            checks.append(("group_resolved", argv, f"group {p.group}", found))
        if p.trust:
            checks.append(("trust_ok", ["wbinfo", "-t"], "domain trust", _found_by_wbinfo))
        return checks

    def check(self, timeout: float) -> ProbeResult:
        deadline = time.monotonic() + timeout
        values: dict[str, float] = {}
        problems: list[str] = []
        for value, argv, what, passed in self.checks():
            left = deadline - time.monotonic()
            if left <= 0:
                values[value] = 0
                problems.append(f"{what}: not run (no time left)")
                continue
            result = self.runner.run(argv, left)
            values[value] = 1 if passed(result) else 0
            if not values[value]:
                problems.append(f"{what}: {_why(result)}")
        if problems:
            return ProbeResult(ok=False, reason="; ".join(problems), values=values)
        return ProbeResult(ok=True, values=values)


def _found_by_getent(result: CommandResult) -> bool:
    return result.ok and bool(result.stdout.strip())


def _found_by_wbinfo(result: CommandResult) -> bool:
    return result.ok


def _why(result: CommandResult) -> str:
    if result.error:
        return result.error
    if result.timed_out:
        return "no answer in time (killed)"
    is_getent = result.argv[-3:-1] in (("getent", "passwd"), ("getent", "group"))
    if is_getent and result.returncode in (0, _NOT_FOUND):
        return "not found"
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    for line in lines:
        if "NT_STATUS_" in line or "failed" in line.lower():
            return line[:200]
    return f"exited {result.returncode}" + (f": {lines[-1][:200]}" if lines else "")
