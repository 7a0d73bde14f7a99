"""A slapd instance with its own slapd.conf and mdb database in a folder, on one address and port.

The recipe writes a ``slapd.conf`` (still supported by OpenLDAP 2.5 and far shorter than a
cn=config tree), loads the base entries offline with ``slapadd`` and runs slapd in the foreground
(``-d 0``).  The root password is stored as a salted SHA-1 hash computed here, so it never appears
in a config file in clear or in an argv.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from gardien_lab.daemons import Prefix, seen_from, wait_ready, write_file

SCHEMAS = ("core", "cosine", "inetorgperson", "nis")


def ssha(password: str) -> str:
    """``{SSHA}`` userPassword/rootpw value slapd checks a simple bind against."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()  # noqa: S324 - slapd's SSHA scheme
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


@dataclass(frozen=True)
class LdapUser:
    uid: str
    password: str


@dataclass(frozen=True)
class SlapdInstance:
    """One slapd serving ``suffix`` from ``base_dir/db`` on ``ldap://address:port/``."""

    base_dir: Path
    address: str = "127.0.0.1"
    port: int = 389
    suffix: str = "dc=gardien,dc=test"
    root_password: str = ""
    """Password of ``cn=admin,<suffix>`` (the rootdn); empty: no rootdn password, no admin bind."""
    users: tuple[LdapUser, ...] = ()
    """Entries ``uid=<uid>,ou=people,<suffix>`` created at :meth:`write_config`."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ldaps_port: int | None = None
    """Also serve ``ldaps://address:ldaps_port/`` with ``tls_cert``/``tls_key``."""

    @property
    def conf(self) -> Path:
        return self.base_dir / "slapd.conf"

    @property
    def pid_file(self) -> Path:
        return self.base_dir / "slapd.pid"

    @property
    def root_dn(self) -> str:
        return f"cn=admin,{self.suffix}"

    def user_dn(self, uid: str) -> str:
        return f"uid={uid},ou=people,{self.suffix}"

    @property
    def url(self) -> str:
        return f"ldap://{self.address}:{self.port}/"

    @property
    def urls(self) -> str:
        urls = [self.url]
        if self.ldaps_port:
            urls.append(f"ldaps://{self.address}:{self.ldaps_port}/")
        return " ".join(urls)

    def config_text(self) -> str:
        lines = [f"include /etc/ldap/schema/{schema}.schema" for schema in SCHEMAS]
        lines += [
            f"pidfile {self.pid_file}",
            f"argsfile {self.base_dir / 'slapd.args'}",
            "modulepath /usr/lib/ldap",
            "moduleload back_mdb",
            "loglevel none",
        ]
        if self.tls_cert and self.tls_key:
            lines += [
                f"TLSCertificateFile {self.tls_cert}",
                f"TLSCertificateKeyFile {self.tls_key}",
            ]
        lines += [
            "database mdb",
            f"suffix {self.suffix}",
            f"rootdn {self.root_dn}",
        ]
        if self.root_password:
            lines.append(f"rootpw {ssha(self.root_password)}")
        lines += [
            f"directory {self.base_dir / 'db'}",
            "maxsize 16777216",
            "access to attrs=userPassword by anonymous auth by self write by * none",
            "access to * by * read",
        ]
        return "\n".join(lines) + "\n"

    def entries_ldif(self) -> str:
        top = self.suffix.split(",")[0].split("=", 1)[1]
        entries = [
            f"dn: {self.suffix}\nobjectClass: dcObject\nobjectClass: organization\n"
            f"dc: {top}\no: {top}\n",
            f"dn: ou=people,{self.suffix}\nobjectClass: organizationalUnit\nou: people\n",
        ]
        for user in self.users:
            entries.append(
                f"dn: {self.user_dn(user.uid)}\nobjectClass: inetOrgPerson\nuid: {user.uid}\n"
                f"cn: {user.uid}\nsn: {user.uid}\nuserPassword: {ssha(user.password)}\n"
            )
        return "\n".join(entries)

    def write_config(self, fs_root: Path = Path("/")) -> Path:
        """Write slapd.conf (mode 600: it holds the rootpw hash) and the base entries LDIF."""
        seen_from(fs_root, self.base_dir / "db").mkdir(parents=True, exist_ok=True)
        write_file(seen_from(fs_root, self.conf), self.config_text(), mode=0o600)
        write_file(seen_from(fs_root, self.base_dir / "base.ldif"), self.entries_ldif(), 0o600)
        return self.conf

    def load_argv(self, prefix: Prefix = ()) -> list[str]:
        """``slapadd`` of the base entries into the (stopped) database, once after write_config."""
        return [*prefix, "slapadd", "-f", str(self.conf), "-l", str(self.base_dir / "base.ldif")]

    def foreground_argv(self, prefix: Prefix = ()) -> list[str]:
        return [*prefix, "slapd", "-d", "0", "-f", str(self.conf), "-h", self.urls]

    def daemon_argv(self, prefix: Prefix = ()) -> list[str]:
        """slapd daemonized; its pid in :attr:`pid_file`."""
        return [*prefix, "slapd", "-f", str(self.conf), "-h", self.urls]

    def ready_argv(self, prefix: Prefix = ()) -> list[str]:
        """Exits 0 once slapd answers an anonymous read of its root DSE."""
        return [
            *prefix,
            "ldapsearch",
            "-x",
            "-LLL",
            "-o",
            "nettimeout=2",
            "-H",
            self.url,
            "-b",
            "",
            "-s",
            "base",
            "namingContexts",
        ]

    def wait_ready(self, timeout: float = 15.0, prefix: Prefix = ()) -> None:
        wait_ready(self.ready_argv(prefix), timeout, f"slapd on {self.url}")
