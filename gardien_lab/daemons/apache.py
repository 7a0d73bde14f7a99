"""Apache httpd instance with its own minimal config (no Debian apache2.conf or envvars).

docs/lab.md section 5: ``ServerRoot`` on the group's volume, so a node without the volume fails at
once with "ServerRoot must be a valid directory"; mpm_event with one small child so a process tree
of a master and a worker exists.  A hang is simulated by stopping the whole process group (stopping
the master alone does not break the service).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gardien_lab.daemons import (
    Prefix,
    http_answers_argv,
    http_url,
    seen_from,
    wait_ready,
    write_file,
)

APACHE = "/usr/sbin/apache2"
MODULES_DIR = Path("/usr/lib/apache2/modules")
MODULES = ("mpm_event", "authz_core", "authz_host", "dir", "mime", "status")


@dataclass(frozen=True)
class ApacheInstance:
    """One Apache: ``root`` holds conf/, htdocs/, logs/ and run/ (the pid file)."""

    name: str
    root: Path
    address: str
    port: int = 80
    user: str = "www-data"
    group: str = "www-data"
    status_from: tuple[str, ...] = ("127.0.0.1",)
    """Addresses allowed to read ``/server-status``."""
    extra: str = ""
    """Appended to the config as is (virtual hosts, locations)."""

    @property
    def conf_file(self) -> Path:
        return self.root / "conf" / "httpd.conf"

    @property
    def pidfile(self) -> Path:
        return self.root / "run" / "httpd.pid"

    @property
    def htdocs(self) -> Path:
        return self.root / "htdocs"

    @property
    def error_log(self) -> Path:
        return self.root / "logs" / "error.log"

    @property
    def url(self) -> str:
        return http_url(self.address, self.port)


def config_text(inst: ApacheInstance) -> str:
    modules = "\n".join(f"LoadModule {m}_module {MODULES_DIR}/mod_{m}.so" for m in MODULES)
    listen = f"[{inst.address}]" if ":" in inst.address else inst.address
    return f"""# gardien lab: Apache instance {inst.name}
ServerRoot "{inst.root}"
ServerName {inst.name}.lab.test
Listen {listen}:{inst.port}
PidFile {inst.pidfile}
DefaultRuntimeDir {inst.root / "run"}
{modules}
User {inst.user}
Group {inst.group}
StartServers 1
ServerLimit 2
ThreadsPerChild 5
MaxRequestWorkers 10
ErrorLog {inst.error_log}
TypesConfig /etc/mime.types
DocumentRoot {inst.htdocs}
DirectoryIndex index.html
<Directory {inst.htdocs}>
  Require all granted
</Directory>
<Location /server-status>
  SetHandler server-status
  Require ip {" ".join(inst.status_from)}
</Location>
{inst.extra}"""


def write_config(
    inst: ApacheInstance, pages: Mapping[str, str] | None = None, fs_root: Path = Path("/")
) -> Path:
    """Write the config and the pages (path under htdocs -> content); returns the config file.

    Without ``pages`` an ``index.html`` saying "gardien lab NAME OK" is written.
    """
    for sub in ("conf", "htdocs", "logs", "run"):
        seen_from(fs_root, inst.root / sub).mkdir(parents=True, exist_ok=True)
    for directory in (inst.root, inst.htdocs):
        seen_from(fs_root, directory).chmod(0o755)
    write_file(seen_from(fs_root, inst.conf_file), config_text(inst))
    for rel, text in (pages or {"index.html": f"gardien lab {inst.name} OK\n"}).items():
        write_file(seen_from(fs_root, inst.htdocs / rel), text)
    shutil.chown(seen_from(fs_root, inst.root / "logs"), inst.user, inst.group)
    return inst.conf_file


def foreground_argv(inst: ApacheInstance, prefix: Prefix = ()) -> list[str]:
    """Run in the foreground (the supervisor's child is the master)."""
    return [*prefix, APACHE, "-f", str(inst.conf_file), "-DFOREGROUND"]


def start_argv(inst: ApacheInstance, prefix: Prefix = ()) -> list[str]:
    """Start daemonized (returns once the master has forked away and written its pid file)."""
    return [*prefix, APACHE, "-f", str(inst.conf_file), "-k", "start"]


def stop_argv(inst: ApacheInstance, prefix: Prefix = ()) -> list[str]:
    return [*prefix, APACHE, "-f", str(inst.conf_file), "-k", "stop"]


def ready_argv(inst: ApacheInstance, prefix: Prefix = ()) -> list[str]:
    return http_answers_argv(inst.address, inst.port, "/", prefix)


def wait_until_ready(inst: ApacheInstance, timeout: float = 10.0, prefix: Prefix = ()) -> None:
    wait_ready(ready_argv(inst, prefix), timeout, f"apache {inst.name} on {inst.url}")
