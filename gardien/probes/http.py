"""HTTP probe: one request, its status and what the body says (Apache, Tomcat, any web app).

The parameters the config validates live here; the check itself, and urllib3 with it, in
:mod:`gardien.probes.http_client`, imported when a probe is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from gardien.probes.base import Probe, ProbeParams, ProbeResult
from gardien.probes.registry import register
from gardien.types import Regex

if TYPE_CHECKING:
    from urllib3 import PoolManager


class HttpParams(ProbeParams):
    url: str = Field(pattern=r"^https?://")
    method: str = Field("GET", pattern=r"^[A-Z]+$")
    expect_status: tuple[int, ...] = Field((200,), min_length=1)
    """The answer's status must be one of these."""
    expect_regex: Regex | None = None
    """The body must match (``re.search``)."""
    fail_regex: Regex | None = None
    """The body must not match (an error page served with status 200)."""
    host: str | None = None
    """Host header to send (a name-based virtual host reached by address)."""
    verify_tls: bool = True
    follow_redirects: bool = False
    max_body_bytes: int = Field(1_048_576, gt=0)
    """Only this much of the body is read and matched."""


@register
class HttpProbe(Probe[HttpParams]):
    kind = "http"
    params_model = HttpParams
    values = {  # noqa: RUF012 - ClassVar of the base
        "status_code": "HTTP status code of the answer (0 when none arrived).",
        "content_failed": "1 when the body did not match expect_regex or matched fail_regex.",
    }

    def __init__(self, params: HttpParams, pools: PoolManager | None = None) -> None:
        super().__init__(params)
        from gardien.probes.http_client import HttpCheck  # noqa: PLC0415 - urllib3 on demand

        self._check = HttpCheck(params, pools)

    def check(self, timeout: float) -> ProbeResult:
        return self._check.check(timeout)
