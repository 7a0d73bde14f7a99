"""HTTP probe (placeholder of the config contract; the check is being written)."""

from __future__ import annotations

from pydantic import Field

from exporter.probes.base import Probe, ProbeParams, ProbeResult
from exporter.probes.registry import register


class HttpParams(ProbeParams):
    url: str = Field(pattern=r"^https?://")
    method: str = "GET"
    expect_status: tuple[int, ...] = (200,)
    expect_regex: str | None = None
    fail_regex: str | None = None
    host: str | None = None
    verify_tls: bool = True


@register
class HttpProbe(Probe[HttpParams]):
    kind = "http"
    params_model = HttpParams

    def check(self, timeout: float) -> ProbeResult:
        raise NotImplementedError
