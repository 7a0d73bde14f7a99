"""LDAP probe (ldap3): bind, anonymously or as a DN, then search and count the entries found.

A frozen slapd still completes TCP connects (the kernel accepts into the backlog), so the probe
only passes on the server's answers: the bind result and the search result.  The connect timeout
and the socket's receive timeout both come from the probe's budget; the receive timeout is cut to
what is left before the search, so connect + bind + search never exceed the budget by much.
The password is read from ``password_file`` on every run (trailing newline dropped), never logged.
"""

from __future__ import annotations

import contextlib
import importlib
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from gardien.probes.base import Probe, ProbeParams, ProbeResult
from gardien.probes.registry import register
from gardien.types import SecretFile

if TYPE_CHECKING:
    import ldap3


class LdapParams(ProbeParams):
    url: str = Field(pattern=r"^ldaps?://[^/?#\s]+/?$")
    """``ldap://host[:port]`` or ``ldaps://host[:port]``."""
    bind_dn: str | None = None
    """Bind as this DN with the password in ``password_file``; anonymous bind without."""
    password_file: SecretFile | None = None
    base: str = ""
    """Search base; the default (empty) with scope ``base`` reads the root DSE."""
    filter: str = "(objectClass=*)"
    scope: Literal["base", "one", "sub"] = "base"
    min_entries: int = Field(1, ge=0)
    """The probe fails when the search returns fewer entries."""
    start_tls: bool = False
    """Upgrade an ``ldap://`` connection with StartTLS before binding."""
    verify_tls: bool = True
    """Check the server certificate (chain and host name) for ldaps:// and StartTLS."""
    ca_file: SecretFile | None = None
    """CA certificates to verify the server with (default: the system's)."""

    @model_validator(mode="after")
    def _bind_pair(self) -> Self:
        if (self.bind_dn is None) != (self.password_file is None):
            raise ValueError("give both 'bind_dn' and 'password_file', or neither (anonymous)")
        if self.start_tls and self.url.startswith("ldaps:"):
            raise ValueError("'start_tls' is for ldap:// URLs; ldaps:// is TLS from the start")
        return self


@register
class LdapProbe(Probe[LdapParams]):
    kind = "ldap"
    params_model = LdapParams
    values: ClassVar[dict[str, str]] = {"entries": "Entries the search returned."}

    def __init__(self, params: LdapParams) -> None:
        super().__init__(params)
        # ldap3 and pyasn1 weigh ~6 MiB and take ~0.3 s to import: loaded only for an ldap
        # probe, when it is built rather than within the budget of the first scrape
        importlib.import_module("ldap3")

    def check(self, timeout: float) -> ProbeResult:
        import ldap3  # noqa: PLC0415 - already loaded by __init__
        from ldap3.core.exceptions import LDAPException  # noqa: PLC0415

        p = self.params
        deadline = time.monotonic() + timeout
        scope = {"base": ldap3.BASE, "one": ldap3.LEVEL, "sub": ldap3.SUBTREE}[p.scope]
        conn = ldap3.Connection(
            self._server(timeout),
            user=p.bind_dn,
            password=_read_password(p.password_file) if p.password_file else None,
            authentication=ldap3.SIMPLE if p.bind_dn else ldap3.ANONYMOUS,
            # ldap3 packs this into SO_RCVTIMEO as whole seconds; _shrink refines it after open
            receive_timeout=max(int(timeout), 1),
            read_only=True,
            auto_referrals=False,
            raise_exceptions=False,
        )
        try:
            conn.open()
            _shrink(conn, deadline)
            if p.start_tls and not conn.start_tls():
                return ProbeResult.failure(f"StartTLS failed: {_describe(conn.result)}")
            _shrink(conn, deadline)
            if not conn.bind():
                return ProbeResult.failure(f"bind failed: {_describe(conn.result)}")
            _shrink(conn, deadline)
            conn.search(
                p.base,
                p.filter,
                search_scope=scope,
                attributes=["1.1"],  # no attributes: only the count matters
                time_limit=max(int(deadline - time.monotonic()), 1),
            )
            if conn.result.get("result") != 0:
                return ProbeResult.failure(f"search failed: {_describe(conn.result)}", entries=0)
            found = sum(1 for r in conn.response or () if r.get("type") == "searchResEntry")
            if found < p.min_entries:
                return ProbeResult.failure(
                    f"search found {found} entries, expected at least {p.min_entries}",
                    entries=found,
                )
            return ProbeResult.success(entries=found)
        except LDAPException as exc:
            return ProbeResult.failure(f"{type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(LDAPException, OSError):
                conn.unbind()

    def _server(self, timeout: float) -> ldap3.Server:
        import ldap3  # noqa: PLC0415 - already loaded by __init__

        p = self.params
        url = urlsplit(p.url)
        use_ssl = url.scheme == "ldaps"
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED if p.verify_tls else ssl.CERT_NONE,
            ca_certs_file=str(p.ca_file) if p.ca_file else None,
        )
        return ldap3.Server(
            url.hostname or "",
            port=url.port or (636 if use_ssl else 389),
            use_ssl=use_ssl,
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=timeout,
        )


def _read_password(path: Path) -> str:
    return path.read_text().rstrip("\r\n")


def _shrink(conn: Any, deadline: float) -> None:
    """Bound the next read by what is left of the budget."""
    if conn.socket is not None:
        conn.socket.settimeout(max(deadline - time.monotonic(), 0.05))


def _describe(result: Any) -> str:
    if not isinstance(result, dict):
        return "no answer"
    text = str(result.get("description") or "unknown")
    message = str(result.get("message") or "").strip()
    return f"{text} ({message[:120]})" if message else text
