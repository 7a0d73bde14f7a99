"""Real ``gardien hook`` processes on loopback addresses (127.x.y.1 and .2, one port) and helpers
for the hook tests and the receiver benchmark.

Every hook pair gets its own config, state folders and addresses, so tests running at the same time
on this machine never meet.  Groups without resources make moves real (journal, held markers,
hook-to-hook release) yet instant.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests
import yaml

from gardien.polling import wait_until
from gardien_lab.freeze import freeze
from tests.support.failover_cluster import Cluster, cluster

REPO = Path(__file__).resolve().parents[2]


def _loopback_pair() -> tuple[str, str]:
    base = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
    return f"{base}.1", f"{base}.2"


def _free_port(hosts: tuple[str, ...]) -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = int(probe.getsockname()[1])
        try:
            for host in hosts[1:]:
                with socket.socket() as other:
                    other.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port on both loopback addresses")


def alert(
    alertname: str = "GardienGroupFailed",
    status: str = "firing",
    fingerprint: str | None = None,
    starts_at: str = "2026-11-24T22:55:37.984Z",
    **labels: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": alertname, "severity": "critical", **labels},
        "annotations": {"summary": "test"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-24T23:00:00Z",
        "generatorURL": "http://prometheus.invalid/graph",
        "fingerprint": fingerprint or uuid.uuid4().hex[:16],
    }


def payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {
        "receiver": "gardien",
        "status": status,
        "alerts": list(alerts),
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid",
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
    }


def make_certificates(folder: Path, *addresses: str) -> Path:
    """A CA (``ca.pem``) and a certificate signed by it (``hook.pem``, ``hook.key``) whose
    subjectAltName lists ``addresses``; returns the CA's path."""
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    key, request, cert = folder / "hook.key", folder / "hook.csr", folder / "hook.pem"
    names = folder / "san.cnf"
    names.write_text("subjectAltName=" + ",".join(f"IP:{a}" for a in addresses) + "\n")
    for argv in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-subj", "/CN=gardien test CA", "-days", "2"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request,
         "-subj", "/CN=gardien hook"],
        ["x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", names],
    ):  # fmt: skip
        subprocess.run(["openssl", *map(str, argv)], check=True, capture_output=True, timeout=60)
    return ca


class HookPair:
    """node1 and node2's hooks, started from one config."""

    def __init__(
        self,
        tmp: Path,
        *,
        hook: dict[str, Any] | None = None,
        groups: dict[str, Any] | None = None,
        network: dict[str, Any] | None = None,
        fencing: dict[str, Any] | None = None,
        dry_run: bool = False,
        web_config: dict[str, Any] | None = None,
        tls: bool = False,
    ) -> None:
        self.tmp = tmp
        self.token = uuid.uuid4().hex
        (tmp / "token").write_text(self.token + "\n")
        self.addresses = dict(zip(("node1", "node2"), _loopback_pair(), strict=True))
        self.scheme = "https" if tls else "http"
        if tls:  # a CA of the test's own and one certificate naming both nodes' addresses
            ca = make_certificates(tmp, *self.addresses.values())
            hook = {"tls_ca_file": str(ca), **(hook or {})}
            tls_server = {"cert_file": str(tmp / "hook.pem"), "key_file": str(tmp / "hook.key")}
            web_config = {"tls_server_config": tls_server, **(web_config or {})}
        self.port = _free_port(tuple(self.addresses.values()))
        self.config_file = tmp / "cluster.yml"
        config = {
            "cluster": "test",
            "nodes": {n: {"address": a} for n, a in self.addresses.items()},
            "hook": {
                "port": self.port,
                "token_file": "token",
                "request_timeout": 5,
                # the tests' alerts are made up, their groups did not fail: a confirmation on
                # the source would skip every move (tests/hook/test_confirm.py tests it)
                "confirm_failure": False,
                **(hook or {}),
            },
            "network": network or {"interface": "lo", "internal": ["127.0.0.1"], "timeout": 1},
            "fencing": fencing or {},
            "groups": groups or {f"g{i}": {"nodes": ["node1", "node2"]} for i in range(1, 9)},
        }
        self.config_file.write_text(yaml.safe_dump(config))
        self.dry_run = dry_run
        self.web_config = tmp / "web.yml" if web_config else None
        if self.web_config:
            self.web_config.write_text(yaml.safe_dump(web_config))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {self.token}"
        self.verify: str | bool = str(tmp / "ca.pem") if tls else True
        self.session.verify = self.verify
        self.session.trust_env = False  # else REQUESTS_CA_BUNDLE would win over session.verify

    def start(self, *nodes: str) -> None:
        for node in nodes or tuple(self.addresses):
            log = open(self.tmp / f"{node}.log", "ab")  # noqa: SIM115 - closed with the process
            argv = [
                sys.executable,
                "-m",
                "gardien.cli",
                "hook",
                "--config.file",
                str(self.config_file),
                "--node",
                node,
                "--state-dir",
                str(self.tmp / node),
                "--web.listen-address",
                f"{self.addresses[node]}:{self.port}",
            ]
            if self.dry_run:
                argv.append("--dry-run")
            if self.web_config:
                argv += ["--web.config.file", str(self.web_config)]
            self.procs[node] = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
            )
            log.close()
        for node in nodes or tuple(self.addresses):
            self._wait_ready(node)

    def _wait_ready(self, node: str) -> None:
        def answers() -> bool:
            if self.procs[node].poll() is not None:
                raise RuntimeError(f"hook {node} exited: {self.log(node)}")
            with contextlib.suppress(requests.RequestException):
                return requests.get(self.url(node, "/-/healthy"), timeout=1, verify=self.verify).ok
            return False

        if not wait_until(answers, 30):
            raise RuntimeError(f"hook {node} not ready: {self.log(node)}")

    @contextlib.contextmanager
    def frozen(self, node: str) -> Iterator[None]:
        """``node``'s hook stopped (SIGSTOP): its kernel still accepts connections, nothing
        answers; thawed at the end."""
        freeze(self.procs[node].pid)
        try:
            yield
        finally:
            os.kill(self.procs[node].pid, signal.SIGCONT)

    def terminate(self, *nodes: str) -> None:
        """Ask the hooks of ``nodes`` (all by default) to stop, without waiting for them."""
        for node in nodes or tuple(self.procs):
            proc = self.procs.get(node)
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)

    def stop(self, *nodes: str) -> None:
        """Stop the hooks of ``nodes`` (all by default): all asked at once, then waited for."""
        self.terminate(*nodes)
        for node in nodes or tuple(self.procs):
            proc = self.procs.pop(node, None)
            if proc is None:
                continue
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def log(self, node: str) -> str:
        return (self.tmp / f"{node}.log").read_text(errors="replace")

    def url(self, node: str, path: str) -> str:
        return f"{self.scheme}://{self.addresses[node]}:{self.port}{path}"

    def get(self, node: str, path: str) -> Any:
        response = self.session.get(self.url(node, path), timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, node: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url(node, path), timeout=30, **kwargs)

    def send(self, node: str, body: dict[str, Any]) -> requests.Response:
        return self.post(
            node,
            "/api/v1/alerts",
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )

    def decisions(self, node: str, group: str | None = None) -> list[dict[str, Any]]:
        found = self.get(node, "/api/v1/decisions")["decisions"]
        return [d for d in found if group is None or d["group"] == group]

    def wait_decisions(
        self,
        node: str,
        group: str,
        count: int = 1,
        settle: Callable[[list[dict[str, Any]]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """The decisions about ``group`` once there are ``count`` of them (bounded wait)."""
        found: list[dict[str, Any]] = []

        def enough() -> bool:
            found[:] = self.decisions(node, group)
            return len(found) >= count and (settle is None or settle(found))

        if wait_until(enough, 30):
            return found
        raise AssertionError(f"{node}: no {count} decisions about {group}: {found}")

    def moves(self, node: str, group: str) -> list[dict[str, Any]]:
        return [
            m
            for m in self.get(node, f"/api/v1/history?group={group}")["moves"]
            if m["kind"] == "move"
        ]

    def held(self, node: str, group: str) -> bool:
        return bool(self.get(node, "/api/v1/status")["groups"][group]["held"])

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gardien.cli", *args, "--config.file", str(self.config_file)],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
            check=False,
        )


NODE_HOOK_PORT = 19481  # each node of a failover cluster has its own network namespace


class NodeHooks:
    """Real ``gardien hook`` processes *inside* the nodes of a failover cluster
    (:mod:`tests.support.failover_cluster`: loop-mounted volume, VIP, Apache), in place of the
    engine's test hosts, reached from the cluster's client namespace with curl.

    :meth:`kill` and :meth:`restart` do what systemd does to ``gardien-hook.service``
    (contrib/systemd): ``KillMode=process`` kills the hook's main process only, so the services
    and commands it started keep running, and ``Restart=always`` starts it again with the same
    command line and state folder.
    """

    def __init__(self, c: Cluster) -> None:
        self.c = c
        self.token = uuid.uuid4().hex
        (c.root / "token").write_text(self.token)
        (c.root / "curl-headers").write_text(f"Authorization: Bearer {self.token}\n")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.argv: dict[str, list[str]] = {}

    def configure(
        self, fencing: bool = False, confirm: bool = False, **groups: Any
    ) -> dict[str, Any]:
        """Write the cluster's config with a hook section (no settle, no cooldown); ``groups``
        replace or add groups of the config; ``confirm``: a move confirms the failure on its
        source first (off by default: most tests make an alert up for a group that did not
        fail).  The config written."""
        data = self.c.config(fencing=fencing)
        data["hook"] = {
            "port": NODE_HOOK_PORT,
            "token_file": "token",
            "settle": 0,
            "cooldown": 0,
            "confirm_failure": confirm,
        }
        data["groups"].update(groups)
        self.c.config_file.write_text(yaml.safe_dump(data))
        return data

    def state_dir(self, name: str) -> Path:
        return self.c.root / f"{name}-hook"

    def start(self, name: str, wait: bool = True) -> None:
        """Start ``name``'s hook in its node; with ``wait``, until it answers (recovery done)."""
        self.argv[name] = [
            sys.executable,
            "-m",
            "gardien.cli",
            "hook",
            "--config.file",
            str(self.c.config_file),
            "--node",
            name,
            "--state-dir",
            str(self.state_dir(name)),
            "--web.listen-address",
            f"{self.c.address(name)}:{NODE_HOOK_PORT}",
        ]
        self._spawn(name)
        if wait:
            self.wait_ready(name)

    def _spawn(self, name: str) -> None:
        with open(self.c.root / f"{name}-hook.log", "ab") as log:
            self.procs[name] = self.c.nodes[name].popen(
                self.argv[name], cwd=REPO, stdout=log, stderr=subprocess.STDOUT
            )

    def restart(self, name: str, wait: bool = True) -> None:
        """Start ``name``'s hook again with the command line it last had (its unit's restart)."""
        self._spawn(name)
        if wait:
            self.wait_ready(name)

    def wait_ready(self, name: str, timeout: float = 60.0) -> None:
        """Until the hook answers ``/-/healthy`` (it serves once its recovery is done)."""

        def answers() -> bool:
            if self.procs[name].poll() is not None:
                raise AssertionError(f"hook {name} exited: {self.log(name)}")
            return self.api("GET", name, "/-/healthy", check=False, timeout=5) is not None

        if not wait_until(answers, timeout, interval=0.2):
            raise AssertionError(f"hook {name} not ready in {timeout:g} s: {self.log(name)}")

    def kill(self, name: str) -> None:
        """SIGKILL of the hook's process only (``KillMode=process``); its children live on."""
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def freeze(self, name: str) -> None:
        """SIGSTOP of the hook: connections are accepted, nothing answers (until the fence)."""
        freeze(self.procs[name].pid, group=True)

    def log(self, name: str) -> str:
        return (self.c.root / f"{name}-hook.log").read_text(errors="replace")

    def api(
        self,
        method: str,
        name: str,
        path: str,
        body: Any = None,
        check: bool = True,
        timeout: float = 120,
    ) -> Any:
        """One request from the client namespace (curl, the token read from a file); None when
        it got no answer (only with ``check=False``)."""
        argv = [
            "curl",
            "-sS",
            "-m",
            f"{timeout:g}",
            "-X",
            method,
            "-H",
            f"@{self.c.root / 'curl-headers'}",
            f"http://{self.c.address(name)}:{NODE_HOOK_PORT}{path}",
        ]
        if body is not None:
            argv += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
        done = self.c.client.run(argv, check=False, timeout=timeout + 10)
        if done.returncode != 0:
            assert not check, done.stderr
            return None
        return json.loads(done.stdout) if done.stdout.startswith(("{", "[")) else done.stdout

    def history(self, name: str, group: str, kind: str = "move") -> list[dict[str, Any]]:
        """``name``'s journal of ``group`` (``/api/v1/history``), the entries of ``kind``."""
        found = self.api("GET", name, f"/api/v1/history?group={group}")["moves"]
        return [m for m in found if m["kind"] == kind]

    def decision(self, name: str, group: str, before: int) -> dict[str, Any]:
        """The decision about ``group`` that follows the first ``before`` (bounded wait)."""
        found: list[dict[str, Any]] = []

        def decided() -> bool:
            decisions = self.api("GET", name, "/api/v1/decisions")["decisions"]
            found[:] = [d for d in decisions if d["group"] == group]
            return len(found) > before

        if wait_until(decided, 120, interval=0.2):
            return dict(found[-1])
        raise AssertionError(f"no decision on {name}: {self.log(name)}")

    def kill_all(self) -> None:
        for name in list(self.procs):
            self.kill(name)


@contextlib.contextmanager
def node_hooks() -> Iterator[NodeHooks]:
    """A failover cluster whose nodes run real hooks in place of the engine's test hosts (no
    hook started yet); every hook is killed at the end."""
    with cluster() as c:
        for name in list(c.hosts):
            c.kill_host(name)
        made = NodeHooks(c)
        try:
            yield made
        finally:
            made.kill_all()
