"""A group of two real services on loopback for hook pairs (tests/support/hooks.py): ``web``, a
Python HTTP server whose page the hook's ``http`` probe checks, and its dependant ``worker``.  Each
writes its pid file when it starts; the helpers read the pid files and the processes' start times in
/proc themselves, not gardien's report.  Used by the restart-in-place and confirmation tests.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from gardien.polling import wait_until
from tests.support.hooks import HookPair, alert, payload

PAGE = "restart test OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def web_services(folder: Path, attempts: int) -> list[dict[str, Any]]:
    """``web`` (fails to start once when ``folder/broken`` exists, removing it) and ``worker``."""
    (folder / "www").mkdir()
    (folder / "www" / "index.html").write_text(PAGE + "\n")
    port = free_port()
    web = (
        f"if [ -e {folder}/broken ]; then rm {folder}/broken; exit 3; fi; "
        f"echo $$ > {folder}/web.pid; "
        f"exec {sys.executable} -m http.server {port} --bind 127.0.0.1 --directory {folder}/www"
    )
    restart = {"attempts": attempts, "window": "10m"}
    return [
        {
            "name": "web",
            "start": ["sh", "-c", web],
            "process": {"pidfile": str(folder / "web.pid")},
            "probes": [
                {"http": {"url": f"http://127.0.0.1:{port}/", "expect_regex": PAGE, "timeout": 1}}
            ],
            "start_timeout": "10s",
            "stop_timeout": "5s",
            "restart": restart,
        },
        {
            "name": "worker",
            "start": ["sh", "-c", f"echo $$ > {folder}/worker.pid; exec sleep 600"],
            "process": {"pidfile": str(folder / "worker.pid")},
            "start_timeout": "5s",
            "stop_timeout": "5s",
            "restart": restart,
        },
    ]


def web_pair(
    make_pair: Any, tmp_path: Path, attempts: int, settle: float = 2, **hook: Any
) -> HookPair:
    """A pair whose group ``web`` runs on node1, settled; ``hook``: more of the hook section."""
    groups = {"web": {"nodes": ["node1", "node2"], "services": web_services(tmp_path, attempts)}}
    settings = {"settle": settle, "cooldown": 0, **hook}
    pair: HookPair = make_pair(hook=settings, groups=groups)
    pair.post("node1", "/api/v1/groups/web/acquire").raise_for_status()
    assert wait_until(lambda: not settling(pair), 10)  # a failure while it settles: no action
    return pair


def pid_of(folder: Path, service: str) -> int:
    return int((folder / f"{service}.pid").read_text())


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command (field 3, the state, first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    try:
        return proc_stat(pid)[0] not in ("Z", "X")
    except OSError:
        return False


def start_time(pid: int) -> int:
    """The process's start time in clock ticks since boot (field 22)."""
    return int(proc_stat(pid)[19])


def crash(folder: Path) -> int:
    """SIGKILL of web's process; its pid."""
    pid = pid_of(folder, "web")
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not alive(pid), 10)
    return pid


def send_failed(pair: HookPair, *nodes: str, alertname: str = "GardienGroupFailed") -> None:
    """The alert, fresh, to every hook (as Alertmanager sends it)."""
    labels = {"group": "web", "node": "node1"} if alertname == "GardienGroupFailed" else {}
    body = payload(alert(alertname, starts_at=fresh_timestamp(), **{"node": "node1", **labels}))
    for node in nodes or ("node1", "node2"):
        pair.send(node, body).raise_for_status()


def fresh_timestamp() -> str:
    """A fresh ``startsAt``: each failure is a new alert, as Alertmanager would send it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def answers(pair: HookPair) -> bool:
    """The page, from the test itself, at the probe's URL."""
    url = re.search(r"url: (http://127\.0\.0\.1:\d+/)", pair.config_file.read_text())
    assert url is not None
    try:
        return PAGE in requests.get(url.group(1), timeout=2).text
    except requests.RequestException:
        return False


def entries(pair: HookPair, node: str, kind: str) -> list[dict[str, Any]]:
    found = pair.get(node, "/api/v1/history?group=web")["moves"]
    return [m for m in found if m["kind"] == kind]


def restarts_counted(pair: HookPair, node: str, service: str, result: str) -> float:
    text = pair.session.get(pair.url(node, "/metrics"), timeout=10).text
    line = f'gardien_hook_restarts_total{{group="web",result="{result}",service="{service}"}} '
    found = [row for row in text.splitlines() if row.startswith(line)]
    assert found, text
    return float(found[0].split()[-1])


def last_decision(pair: HookPair, node: str, before: int) -> dict[str, Any]:
    return pair.wait_decisions(node, "web", before + 1)[-1]


def settling(pair: HookPair) -> bool:
    return bool(pair.get("node1", "/api/v1/status?group=web")["groups"]["web"]["settling"])


def kill_services(folder: Path) -> None:
    """Kill whatever of ``web`` and ``worker`` still runs (stopped ones too): a test's end."""
    for service in ("web", "worker"):
        try:
            pid = pid_of(folder, service)
        except (OSError, ValueError):
            continue
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
