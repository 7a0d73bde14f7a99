"""The contract every probe kind implements.

A probe kind is one module in this package holding a ``Params`` model (its config keys) and a
``Probe`` subclass.  Probes return a frozen :class:`ProbeResult` and never import
prometheus_client: one collector turns results into metric families at scrape time.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from gardien.types import Name, PositiveDuration


class ProbeParams(BaseModel):
    """Keys every probe kind accepts besides its own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Name | None = None
    """Label ``probe`` of the probe's metrics; defaults to the kind (``http``, ``http_2``...)."""
    timeout: PositiveDuration = 5.0
    """Hard limit for one run of the probe, in seconds."""
    every: PositiveDuration | None = None
    """Run at most this often; the scrapes in between report the last result, and
    ``gardien_probe_age_seconds`` says how old it is.  Such a run is bounded by ``timeout``, not
    by the scrape's budget (exporter/runner.py).  For an expensive or slow check (a trust check
    that asks a domain controller, a share listing, a login at sub-second scrapes), never for the
    only check that should move a group quickly.  Default: on every scrape."""


@dataclass(frozen=True)
class ProbeResult:
    """What one run of a probe found.

    ``values`` holds the numeric facts the probe kind declares in ``Probe.values`` (an HTTP status
    code, a count of children); ``reason`` says in a few words why the probe failed ("" when ok).
    """

    ok: bool
    reason: str = ""
    values: Mapping[str, float] = field(default_factory=dict)
    duration: float = 0.0

    @classmethod
    def failure(cls, reason: str, **values: float) -> ProbeResult:
        return cls(ok=False, reason=reason, values=values)

    @classmethod
    def success(cls, **values: float) -> ProbeResult:
        return cls(ok=True, values=values)


P = TypeVar("P", bound=ProbeParams)


class Probe(abc.ABC, Generic[P]):
    """One configured check of a service.

    Subclasses set ``kind``, ``params_model`` and ``values`` (name -> HELP text of each numeric
    value they report, exported as ``gardien_probe_<kind>_<name>``) and implement :meth:`check`.
    ``check`` must honour ``timeout`` itself (socket timeouts, killing child processes): the
    runner stops waiting at the deadline, but a Python thread cannot be killed.
    """

    kind: ClassVar[str]
    params_model: ClassVar[type[ProbeParams]]
    values: ClassVar[Mapping[str, str]] = {}

    def __init__(self, params: P) -> None:
        self.params = params

    @abc.abstractmethod
    def check(self, timeout: float) -> ProbeResult:
        """Run the check once within ``timeout`` seconds and say what was found."""

    def run(self, timeout: float | None = None) -> ProbeResult:
        """Run :meth:`check` bounded by the probe's own timeout; never raises."""
        budget = self.params.timeout if timeout is None else min(timeout, self.params.timeout)
        started = time.monotonic()
        try:
            result = self.check(budget)
        except Exception as exc:
            result = ProbeResult.failure(f"{type(exc).__name__}: {exc}")
        duration = time.monotonic() - started
        return ProbeResult(
            ok=result.ok, reason=result.reason, values=result.values, duration=duration
        )
