"""RSS of the real ``gardien exporter`` process with the lab's five groups, idle and after scrapes.

    python3 -m benchmarks.exporter_rss [--scrapes 200] [--arena-max N] [--repeat 3]
    python3 -m benchmarks.exporter_rss --imports

From a checkout's root, as root; no lab.  The config has the lab's shape (gardien_lab/
clusterconfig.py): php4 and php5 (an Apache with an http probe and a process probe, a Samba with
an smb share probe every 2 s and a process probe), mysql1 and mysql2 (a mysql probe and a process
probe each), java (an http probe), winbind on every node (a wbinfo ping), a tcp probe, and a
network section pinging four loopback addresses.  Every target is on loopback: one real Apache
serves the http probes and one real MariaDB the mysql probes (started as tests/probes/conftest.py
starts them), so their probe paths run to the end; smbd and winbindd are absent, so those probes
fail, having still loaded their libraries and run their code.  Volumes and VIPs are absent.

The exporter runs as its own process (``python3 -m gardien.cli exporter``, as a node runs it); the
client scrapes it ``--scrapes`` times, ten milliseconds apart, and VmRSS of /proc/PID/status is read
once it answers (``start``) and after the scrapes (``scraped``), with VmHWM (the peak) and the
scraped RSS split into RssAnon (``anon``: the heap, Python's objects, thread stacks) and RssFile
(``file``: the pages of the interpreter and the extension modules mapped from disk), and the
exporter's CPU time (utime + stime, every thread) per scrape.
``--arena-max N`` starts it with ``MALLOC_ARENA_MAX=N`` in its environment (glibc's malloc arenas:
one per thread that allocates by default, up to eight per core; the exporter limits itself to two
unless the variable is set, exporter/daemon.py, so ``--arena-max 16`` measures glibc's default on
two cores).

``--imports`` says where the RSS at start goes, each in a fresh interpreter (VmRSS after the
imports): the interpreter alone, then every library the exporter of that config loads, added in
turn (``added``: what it brings that the ones before did not, the standard library modules it
is the first to import included) with its ``share`` (what the whole set weighs less without it: a
module two libraries import counts in neither), then gardien's own modules.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gardien_lab.daemons import mariadb
from tests.probes.conftest import running_apache, running_mariadb
from tests.support.exporter import ExporterProcess

PAUSE = 0.01
PAGE = "health.php"
LIBRARIES = {
    # pydantic loads most of itself lazily: on first use of its names and its first model
    "pydantic": "from pydantic import AfterValidator, BaseModel, Field, create_model\n"
    "create_model('M', x=(int, Field(1, ge=0)))",
    "pyyaml": "import yaml",
    "urllib3": "import urllib3",
    "prometheus_client": "import prometheus_client",
    "psutil": "import psutil",
    "icmplib": "import icmplib",
    "h11": "import h11",
    "bcrypt": "import bcrypt",
    "pymysql": "import pymysql",
    "smbprotocol": "import smbprotocol.connection, smbprotocol.session, smbprotocol.open, "
    "smbprotocol.tree",
}
"""What the exporter with the lab's config imports beyond the standard library, by distribution:
the statement that loads it as the exporter uses it."""
GARDIEN = "import exporter.daemon, gardien.probes.mysql, gardien.probes.smb_session"


def lab_like_config(
    base: Path, web: str, pidfile: Path, db: mariadb.MariadbInstance, creds: Path
) -> Path:
    process = {"pidfile": str(pidfile), "min_children": 1}

    def service(name: str, probes: list[dict[str, Any]]) -> dict[str, Any]:
        return {"name": name, "start": ["true"], "stop": ["true"], "process": process,
                "probes": probes}  # fmt: skip

    def group(i: int, services: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "nodes": ["node1", "node2"],
            "volume": {"device": f"/dev/absent{i}", "mountpoint": str(base / f"absent{i}"),
                       "fstype": "ext4"},
            "vip": {"address": f"127.0.9.{i + 1}/32", "interface": "lo"},
            "services": services,
        }  # fmt: skip

    http = {"http": {"url": f"{web}/{PAGE}", "expect_regex": "volume OK", "timeout": "2s"}}
    smb = {"smb": {"server": "127.0.0.1", "share": "php", "timeout": "3s", "every": "2s"}}
    mysql = {"mysql": {"host": db.address, "port": db.port, "credentials_file": str(creds),
                       "timeout": "2s"}}  # fmt: skip
    tcp = {"tcp": {"host": db.address, "port": db.port, "timeout": "2s"}}
    groups = {
        "php4": group(0, [service("apache-php4", [http]), service("samba-php4", [smb])]),
        "php5": group(1, [service("apache-php5", [http]), service("samba-php5", [smb])]),
        "mysql1": group(2, [service("mysql1", [mysql, tcp])]),
        "mysql2": group(3, [service("mysql2", [mysql])]),
        "java": group(4, [service("tomcat", [http])]),
    }
    winbind = {"winbind": {"via": "winbindd", "ping": True, "timeout": "2s"}}
    config = {
        "cluster": "rss",
        "nodes": {"node1": {"address": "127.0.0.1"}, "node2": {"address": "127.0.0.2"}},
        "network": {"interface": "lo", "internal": ["127.0.0.1", "127.0.0.2"],
                    "external": ["127.0.0.3", "127.0.0.4"], "timeout": "1s"},
        "disks": [],
        "node_services": [{"name": "winbind", "probes": [winbind]}],
        "groups": groups,
    }  # fmt: skip
    path = base / "cluster.json"
    path.write_text(json.dumps(config))
    return path


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise LookupError(key)


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (every thread), /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(config: Path, scrapes: int, arena_max: int | None) -> dict[str, float]:
    saved = os.environ.get("MALLOC_ARENA_MAX")
    if arena_max is not None:
        os.environ["MALLOC_ARENA_MAX"] = str(arena_max)
    try:
        exporter = ExporterProcess(config, log_level="warning")
    finally:
        if saved is None:
            os.environ.pop("MALLOC_ARENA_MAX", None)
        else:
            os.environ["MALLOC_ARENA_MAX"] = saved
    try:
        exporter.wait_ready()
        pid = exporter.process.pid
        started = status_kib(pid, "VmRSS")
        cpu_before = cpu_seconds(pid)
        failed = set()
        for _ in range(scrapes):
            answer = exporter.scrape(scrape_timeout=5.0)
            answer.raise_for_status()
            failed = {
                line.split('probe="')[1].split('"')[0]
                for line in answer.text.splitlines()
                if line.startswith("gardien_probe_success{") and line.endswith(" 0.0")
            }
            time.sleep(PAUSE)
        cpu = cpu_seconds(pid) - cpu_before
        return {
            "cpu_ms": cpu / scrapes * 1000,
            "start": started / 1024,
            "scraped": status_kib(pid, "VmRSS") / 1024,
            "peak": status_kib(pid, "VmHWM") / 1024,
            "anon": status_kib(pid, "RssAnon") / 1024,
            "file": status_kib(pid, "RssFile") / 1024,
            "threads": status_kib(pid, "Threads"),
            "failed": len(failed),
        }
    finally:
        exporter.stop()


def rss_after(statements: list[str]) -> float:
    """VmRSS in MiB of a fresh interpreter once it ran ``statements``."""
    code = "\n".join(statements)
    code += "\nprint(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return int(done.stdout) / 1024


def imports_report() -> None:
    """Each library added in turn (what it brings that the ones before did not), and its share
    (what all of them weigh less without it)."""
    everything = list(LIBRARIES.values())
    total = rss_after(everything)
    before = rss_after([])
    print(f"{'':24} {'added':>7} {'share':>7}   (MiB)")
    print(f"{'interpreter':24} {before:7.1f}")
    for i, (name, statement) in enumerate(LIBRARIES.items()):
        now = rss_after(everything[: i + 1])
        share = total - rss_after([s for s in everything if s != statement])
        print(f"{name:24} {now - before:7.1f} {share:7.1f}")
        before = now
    full = rss_after([*everything, GARDIEN])
    print(f"{'gardien':24} {full - total:7.1f}")
    print(f"{'all':24} {full:7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="exporters started one after another")
    parser.add_argument("--arena-max", type=int, default=None)
    parser.add_argument("--imports", action="store_true", help="where the RSS at start goes")
    args = parser.parse_args()
    if args.imports:
        imports_report()
        return
    with tempfile.TemporaryDirectory(prefix="gardien-rss-") as tmp:
        base = Path(tmp)
        base.chmod(0o755)
        page = {PAGE: "rss: volume OK\n"}
        with (
            running_apache(base, "rss-http", page) as web,
            running_mariadb(base, "rss-mysql") as (db, creds),
        ):
            url = f"http://{web.inst.address}:{web.inst.port}"
            config = lab_like_config(base, url, web.inst.pidfile, db, creds)
            runs = [one_run(config, args.scrapes, args.arena_max) for _ in range(args.repeat)]
    arena = "unset" if args.arena_max is None else str(args.arena_max)
    print(f"MALLOC_ARENA_MAX={arena}, {args.scrapes} scrapes, median of {len(runs)} exporters")
    print(f"failing probes (smb, winbind: no daemon): {runs[-1]['failed']}")
    for key in ("start", "scraped", "peak", "anon", "file"):
        values = [r[key] for r in runs]
        print(f"  RSS {key:8} {statistics.median(values):6.1f} MiB  (each: "
              + ", ".join(f"{v:.1f}" for v in values) + ")")  # fmt: skip
    cpu = statistics.median(r["cpu_ms"] for r in runs)
    print(f"  CPU per scrape {cpu:.1f} ms, threads {runs[-1]['threads']:.0f}")


if __name__ == "__main__":
    main()
