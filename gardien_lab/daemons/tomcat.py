"""Tomcat 10 instance: its own CATALINA_BASE run by Debian's catalina.sh (docs/lab.md section 5).

``catalina.sh run`` execs java, so the foreground process is the JVM itself.  The conf files Tomcat
needs besides server.xml (web.xml holds the DefaultServlet that serves static files) are copied
from Debian's /etc/tomcat10.
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

CATALINA_HOME = Path("/usr/share/tomcat10")
DEBIAN_CONF = Path("/etc/tomcat10")
COPIED_CONF = ("web.xml", "logging.properties", "catalina.properties", "context.xml")


@dataclass(frozen=True)
class TomcatInstance:
    """One Tomcat: ``base`` is its CATALINA_BASE (conf/, logs/, temp/, work/, webapps/)."""

    name: str
    base: Path
    address: str
    port: int = 8080
    shutdown_port: int = 8005
    """On 127.0.0.1 of the instance's network namespace."""
    user: str = "tomcat"
    java_home: str | None = None
    """JAVA_HOME; None lets catalina.sh use the ``java`` on PATH."""
    java_opts: str = "-Xms32m -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"

    @property
    def pidfile(self) -> Path:
        return self.base / "temp" / "catalina.pid"

    @property
    def webroot(self) -> Path:
        return self.base / "webapps" / "ROOT"

    @property
    def url(self) -> str:
        return http_url(self.address, self.port)


def server_xml(inst: TomcatInstance) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- gardien lab: Tomcat instance {inst.name} -->
<Server port="{inst.shutdown_port}" address="127.0.0.1" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector port="{inst.port}" address="{inst.address}" protocol="HTTP/1.1"
               connectionTimeout="20000"/>
    <Engine name="Catalina" defaultHost="localhost">
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false"/>
    </Engine>
  </Service>
</Server>
"""


def write_config(
    inst: TomcatInstance, pages: Mapping[str, str] | None = None, fs_root: Path = Path("/")
) -> Path:
    """Lay out CATALINA_BASE with the pages (path under webapps/ROOT -> content), owned by the
    instance's user; returns the server.xml path.  Without ``pages`` an ``index.html`` saying
    "gardien lab NAME OK" is written."""
    base = seen_from(fs_root, inst.base)
    for sub in ("conf", "logs", "temp", "work", "webapps/ROOT"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for name in COPIED_CONF:
        shutil.copyfile(DEBIAN_CONF / name, base / "conf" / name)
    write_file(base / "conf" / "server.xml", server_xml(inst))
    for rel, text in (pages or {"index.html": f"gardien lab {inst.name} OK\n"}).items():
        write_file(seen_from(fs_root, inst.webroot / rel), text)
    base.chmod(0o755)
    for path in (base, *base.rglob("*")):
        shutil.chown(path, inst.user, inst.user)
    return inst.base / "conf" / "server.xml"


def _catalina(inst: TomcatInstance, action: str, prefix: Prefix) -> list[str]:
    env = [
        f"CATALINA_HOME={CATALINA_HOME}",
        f"CATALINA_BASE={inst.base}",
        f"CATALINA_TMPDIR={inst.base / 'temp'}",
        f"CATALINA_PID={inst.pidfile}",
        f"CATALINA_OPTS={inst.java_opts}",
    ]
    if inst.java_home:
        env.append(f"JAVA_HOME={inst.java_home}")
    return [
        *prefix, "setpriv", "--reuid", inst.user, "--regid", inst.user, "--init-groups",
        "env", *env, str(CATALINA_HOME / "bin" / "catalina.sh"), action,
    ]  # fmt: skip


def foreground_argv(inst: TomcatInstance, prefix: Prefix = ()) -> list[str]:
    """``catalina.sh run``: the process becomes the JVM (its pid is the one to watch)."""
    return _catalina(inst, "run", prefix)


def start_argv(inst: TomcatInstance, prefix: Prefix = ()) -> list[str]:
    """``catalina.sh start``: the JVM runs in the background, its pid in ``pidfile``."""
    return _catalina(inst, "start", prefix)


def stop_argv(inst: TomcatInstance, prefix: Prefix = (), grace: int = 10) -> list[str]:
    """``catalina.sh stop GRACE -force``: shutdown port, then KILL of the pid after ``grace`` s."""
    return [*_catalina(inst, "stop", prefix), str(grace), "-force"]


def ready_argv(inst: TomcatInstance, prefix: Prefix = ()) -> list[str]:
    return http_answers_argv(inst.address, inst.port, "/", prefix)


def wait_until_ready(inst: TomcatInstance, timeout: float = 60.0, prefix: Prefix = ()) -> None:
    wait_ready(ready_argv(inst, prefix), timeout, f"tomcat {inst.name} on {inst.url}")
