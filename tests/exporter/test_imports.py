"""What the exporter process loads: libraries of probe kinds not configured stay out of its memory.

Every module imported by a daemon stays in its RSS for its whole life, so ``gardien exporter``
with only http probes must not load pymysql, ldap3 or pySMART, nor the modules of other commands.
The start of the exporter (parser, daemon module, config, probes, node collectors) runs in a
fresh interpreter, which then lists what it imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_START = """
import json, sys
from pathlib import Path
from gardien import cli
cli.build_parser(["exporter"])
from exporter import daemon, runner
from gardien.config import load_config
config = load_config(Path(sys.argv[1]))
probes = [runner.build_probe(t.spec.kind, t.spec.params) for t in runner.probe_targets(config)]
daemon.node_collectors(config, Path(sys.argv[2]))
print(json.dumps(sorted(sys.modules)))
"""

_NOT_FOR_HTTP = (
    "pymysql",
    "ldap3",
    "pyasn1",
    "pySMART",
    "smbprotocol",
    "spnego",
    "grafana_foundation_sdk",
    "gardien.render",
    # the http probe speaks urllib3 alone: requests and its charset detectors cost 6 MiB
    "requests",
    "chardet",
    "charset_normalizer",
)


def _modules_loaded(config: Path, state_dir: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _START, str(config), str(state_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


def _config(path: Path, probe: str) -> Path:
    path.write_text(
        "cluster: imports\nnodes: {node1: {address: 127.0.0.1}}\ngroups:\n  g:\n"
        f"    nodes: [node1]\n    services:\n      - {{name: s, probes: [{probe}]}}\n"
    )
    return path


def test_an_exporter_with_http_probes_loads_no_mysql_ldap_or_render_library(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path / "http.yml", "{http: {url: 'http://127.0.0.1:1/'}}")

    loaded = _modules_loaded(config, tmp_path / "state")

    assert "gardien.probes.http" in loaded
    assert "urllib3" in loaded
    for name in _NOT_FOR_HTTP:
        assert name not in loaded, f"{name} imported by an exporter with only http probes"


@pytest.mark.parametrize(
    ("probe", "library"),
    [
        ("{mysql: {socket: /run/mysqld/none.sock}}", "pymysql"),
        ("{ldap: {url: 'ldap://127.0.0.1:1'}}", "ldap3"),
        ("{smb: {server: 127.0.0.1, share: pub}}", "smbprotocol"),
        ("{http: {url: 'http://127.0.0.1:1/'}}", "urllib3"),
    ],
)
def test_a_configured_probe_kind_loads_its_library(
    tmp_path: Path, probe: str, library: str
) -> None:
    loaded = _modules_loaded(_config(tmp_path / "c.yml", probe), tmp_path / "state")

    assert library in loaded


def test_an_smb_server_listing_loads_no_smbprotocol(tmp_path: Path) -> None:
    """Only a share listing runs in process; a server listing still runs smbclient."""
    loaded = _modules_loaded(_config(tmp_path / "c.yml", "{smb: {server: 127.0.0.1}}"), tmp_path)

    assert "gardien.probes.smb" in loaded
    assert "smbprotocol" not in loaded


def test_an_exporter_without_http_probes_loads_no_http_client(tmp_path: Path) -> None:
    loaded = _modules_loaded(
        _config(tmp_path / "c.yml", "{tcp: {host: 127.0.0.1, port: 1}}"), tmp_path
    )

    assert "gardien.probes.http" in loaded  # its parameters, for the config
    assert "gardien.probes.http_client" not in loaded
    assert "urllib3" not in loaded
