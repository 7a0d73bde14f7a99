"""The ``--web.config.file`` of the exporter and the hook: TLS, basic auth users, headers.

The file format is the Prometheus exporter-toolkit's, so operators reuse what they already write
for node_exporter::

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_ca_file: ca.crt                      # optional, with client_auth_type
      client_auth_type: RequireAndVerifyClientCert
      min_version: TLS12
    http_server_config:
      headers: {X-Frame-Options: deny}
    basic_auth_users:
      prometheus: $2b$12$...                      # bcrypt hash (htpasswd -nBC 12 "" | tr -d ':')

Relative paths are relative to the web config file.  Every problem is reported at start, before
the server listens.  This module only reads and checks the file; :mod:`gardien.web.auth` checks
requests and :mod:`gardien.web.server` serves.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import bcrypt
import yaml

from gardien.errors import ConfigError

_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_TLS_KEYS = {
    "cert_file",
    "key_file",
    "client_ca_file",
    "client_auth_type",
    "min_version",
    "max_version",
}
_HTTP_KEYS = {"headers", "http2"}


@dataclass(frozen=True)
class TlsConfig:
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    client_auth: ssl.VerifyMode = ssl.CERT_NONE
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion | None = None

    def context(self) -> ssl.SSLContext:
        """A server-side TLS context; raises ``ssl.SSLError``/``OSError`` on unusable files."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = self.min_version
        if self.max_version is not None:
            context.maximum_version = self.max_version
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file is not None:
            context.load_verify_locations(cafile=self.client_ca_file)
        context.verify_mode = self.client_auth
        return context


@dataclass(frozen=True)
class WebConfig:
    """The parsed ``--web.config.file``; the empty default serves plain HTTP without auth."""

    tls: TlsConfig | None = None
    basic_auth_users: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def load_web_config(path: Path | str | None) -> WebConfig:
    """Read and check a web config file; raise :class:`ConfigError` listing every problem."""
    if path is None:
        return WebConfig()
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(file), [f"{file}: cannot read web config: {exc}"]) from exc
    problems: list[str] = []
    config = _parse_web_config(data if data is not None else {}, file.resolve().parent, problems)
    if config is not None and config.tls is not None:
        try:
            config.tls.context()
        except (OSError, ssl.SSLError) as exc:
            problems.append(f"tls_server_config: cannot load the certificate or key: {exc}")
    if problems:
        raise ConfigError(str(file), [f"{file}: {p}" for p in problems])
    assert config is not None
    return config


def _parse_web_config(data: Any, base: Path, problems: list[str]) -> WebConfig | None:
    if not isinstance(data, dict):
        problems.append("the web config must be a YAML mapping")
        return None
    for key in sorted(set(data) - {"tls_server_config", "http_server_config", "basic_auth_users"}):
        problems.append(f"unknown key {key!r}")
    tls = _parse_tls(data.get("tls_server_config"), base, problems)
    users = _parse_users(data.get("basic_auth_users"), problems)
    headers = _parse_http(data.get("http_server_config"), problems)
    return WebConfig(tls, MappingProxyType(users), MappingProxyType(headers))


def _file(value: Any, base: Path, key: str, problems: list[str]) -> Path | None:
    if not isinstance(value, str) or not value:
        problems.append(f"tls_server_config.{key}: must be a file path")
        return None
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        problems.append(f"tls_server_config.{key}: file {path} does not exist")
        return None
    return path


def _parse_tls(data: Any, base: Path, problems: list[str]) -> TlsConfig | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        problems.append("tls_server_config: must be a mapping")
        return None
    for key in sorted(set(data) - _TLS_KEYS):
        problems.append(f"tls_server_config.{key}: not supported (supported: {sorted(_TLS_KEYS)})")
    for key in ("cert_file", "key_file"):
        if key not in data:
            problems.append(f"tls_server_config.{key}: required")
    cert = (
        _file(data.get("cert_file"), base, "cert_file", problems) if "cert_file" in data else None
    )
    key_file = (
        _file(data.get("key_file"), base, "key_file", problems) if "key_file" in data else None
    )
    ca = (
        _file(data["client_ca_file"], base, "client_ca_file", problems)
        if "client_ca_file" in data
        else None
    )
    auth_name = data.get("client_auth_type", "NoClientCert")
    client_auth = _CLIENT_AUTH.get(auth_name) if isinstance(auth_name, str) else None
    if client_auth is None:
        problems.append(
            f"tls_server_config.client_auth_type: {auth_name!r} is not supported; "
            f"use one of {sorted(_CLIENT_AUTH)}"
        )
    elif client_auth != ssl.CERT_NONE and "client_ca_file" not in data:
        problems.append(f"tls_server_config: client_auth_type {auth_name} needs client_ca_file")
    elif client_auth == ssl.CERT_NONE and "client_ca_file" in data:
        problems.append(
            "tls_server_config: client_ca_file is set but client_auth_type does not verify "
            "client certificates (use RequireAndVerifyClientCert or VerifyClientCertIfGiven)"
        )
    versions = {}
    for key in ("min_version", "max_version"):
        if key in data:
            versions[key] = _TLS_VERSIONS.get(data[key])
            if versions[key] is None:
                problems.append(
                    f"tls_server_config.{key}: {data[key]!r} is not one of {sorted(_TLS_VERSIONS)}"
                )
    if cert is None or key_file is None or client_auth is None or None in versions.values():
        return None
    return TlsConfig(
        cert_file=cert,
        key_file=key_file,
        client_ca_file=ca,
        client_auth=client_auth,
        min_version=versions.get("min_version") or ssl.TLSVersion.TLSv1_2,
        max_version=versions.get("max_version"),
    )


def _parse_users(data: Any, problems: list[str]) -> dict[str, bytes]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append("basic_auth_users: must be a mapping of user name to bcrypt hash")
        return {}
    users = {}
    for user, hashed in data.items():
        if not isinstance(user, str) or not user or ":" in user:
            problems.append(f"basic_auth_users: invalid user name {user!r}")
        elif not isinstance(hashed, str) or not _is_bcrypt(hashed):
            # never echo the value: a plain password written by mistake must not reach the logs
            problems.append(f"basic_auth_users.{user}: not a bcrypt hash ($2a$, $2b$ or $2y$)")
        else:
            users[user] = hashed.encode()
    return users


def _is_bcrypt(value: str) -> bool:
    if not value.startswith(("$2a$", "$2b$", "$2y$")) or len(value) != 60:
        return False
    try:
        bcrypt.checkpw(b"", value.encode())
    except ValueError:
        return False
    return True


def _parse_http(data: Any, problems: list[str]) -> dict[str, str]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append("http_server_config: must be a mapping")
        return {}
    for key in sorted(set(data) - _HTTP_KEYS):
        problems.append(
            f"http_server_config.{key}: not supported (supported: {sorted(_HTTP_KEYS)})"
        )
    if data.get("http2", False) not in (True, False):
        problems.append("http_server_config.http2: must be true or false (HTTP/1.1 is served)")
    headers = data.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        problems.append("http_server_config.headers: must map header names to strings")
        return {}
    return dict(headers)
