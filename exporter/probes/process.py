"""Process probe (placeholder of the config contract; the check is being written)."""

from __future__ import annotations

from exporter.probes.base import Probe, ProbeParams, ProbeResult
from exporter.probes.registry import register


class ProcessParams(ProbeParams):
    pidfile: str | None = None
    cmdline: str | None = None
    min_children: int = 0


@register
class ProcessProbe(Probe[ProcessParams]):
    kind = "process"
    params_model = ProcessParams

    def check(self, timeout: float) -> ProbeResult:
        raise NotImplementedError
