"""Config keys of the http, tcp, mysql and process kinds, as the config loader validates them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gardien.config import parse_config
from gardien.probes.http import HttpParams
from gardien.probes.mysql import Credentials, MysqlParams
from gardien.probes.process import ProcessParams
from gardien.probes.registry import probe_kinds
from gardien.probes.tcp import TcpParams
from gardien.probes.winbind import WBINFO_EVERY, WinbindParams

EXAMPLE = Path(__file__).parents[2] / "examples" / "intranet.yml"


def test_kinds_are_registered_and_declare_their_values() -> None:
    kinds = probe_kinds()
    assert set(kinds["http"].values) == {"status_code", "content_failed"}
    assert set(kinds["tcp"].values) == {"connected", "expect_failed"}
    assert set(kinds["mysql"].values) == {"ping_ok", "query_ok", "tables_checked", "tables_failed"}
    assert set(kinds["process"].values) == {
        "processes", "children", "zombies", "stopped", "master_alive",
    }  # fmt: skip


def test_example_config_keys_are_accepted() -> None:
    config = parse_config(EXAMPLE.read_text(), str(EXAMPLE), EXAMPLE.parent, check_files=False)
    _, apache = config.services["apache-php4"]
    _, mysql2 = config.services["mysql2"]
    _, tomcat = config.services["tomcat"]

    assert apache.process is not None
    assert apache.process.params == ProcessParams(pidfile="/run/apache2-php4/apache2.pid",
                                                  min_children=1)  # fmt: skip
    http = apache.probes[0].params
    assert isinstance(http, HttpParams) and http.expect_regex == "DB OK" and http.timeout == 3
    mysql = mysql2.probes[0].params
    assert isinstance(mysql, MysqlParams) and (mysql.host, mysql.port) == ("10.0.0.52", 3307)
    assert tomcat.process is not None and tomcat.probes[0].kind == "http"


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        (HttpParams, {"url": "ftp://x/"}, "String should match pattern"),
        (HttpParams, {"url": "http://x/", "expect_regex": "("}, "invalid regular expression"),
        (TcpParams, {"host": "x", "port": 0}, "greater than or equal to 1"),
        (MysqlParams, {}, "exactly one of 'socket' or 'host'"),
        (MysqlParams, {"socket": "/s", "host": "h"}, "exactly one of 'socket' or 'host'"),
        (MysqlParams, {"host": "h", "check_tables": ["t"]}, "is not 'database.table'"),
        (ProcessParams, {}, "give 'pidfile' or 'cmdline'"),
        (ProcessParams, {"cmdline": "x", "min_children": -1}, "greater than or equal to 0"),
    ],
)
def test_invalid_params_are_refused(
    model: type[HttpParams | TcpParams | MysqlParams | ProcessParams],
    params: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(ValidationError, match=message):
        model.model_validate(params, context={"check_files": False})


def test_credentials_file_parsing(tmp_path: Path) -> None:
    path = tmp_path / "my.cnf"
    path.write_text(
        "[mysqld]\nuser = mysql\n[client]\nuser = probe\npassword = 'p#ss;word'\nskip-ssl\n"
    )
    assert Credentials.read(path) == Credentials(user="probe", password="p#ss;word")
    assert Credentials.read(None) == Credentials()


@pytest.mark.parametrize(
    ("params", "every"),
    [
        ({"ping": True}, WBINFO_EVERY),
        ({"user": "u", "via": "winbindd"}, WBINFO_EVERY),
        ({"trust": True, "every": "30s"}, 30.0),
        ({"ping": True, "every": None}, None),  # every scrape, asked for
        ({"user": "u"}, None),  # getent alone: every scrape
        ({"user": "u", "ping": "false"}, None),
    ],
)
def test_a_winbind_probe_running_wbinfo_has_its_own_schedule(
    params: dict[str, object], every: float | None
) -> None:
    assert WinbindParams.model_validate(params).every == every
