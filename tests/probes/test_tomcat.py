"""Tomcat is probed by the http probe (there is no tomcat kind): a real Tomcat 10 run by
``catalina.sh run`` from its own CATALINA_BASE."""

from __future__ import annotations

import re

import pytest

from gardien.probes.http import HttpParams, HttpProbe
from gardien.probes.process import ProcessParams, ProcessProbe
from gardien_lab.daemons.tomcat import TomcatInstance
from tests.probes.conftest import needs_root

pytestmark = [needs_root, pytest.mark.timeout(180)]


def test_tomcat_health_page(tomcat_instance: TomcatInstance) -> None:
    health = HttpProbe(HttpParams(url=f"{tomcat_instance.url}health", expect_regex="UP")).run()
    missing = HttpProbe(HttpParams(url=f"{tomcat_instance.url}app/health")).run()

    assert health.ok, health.reason
    assert health.values == {"status_code": 200, "content_failed": 0}
    assert not missing.ok
    assert missing.values["status_code"] == 404


def test_tomcat_jvm_found_by_its_command_line(tomcat_instance: TomcatInstance) -> None:
    # catalina.sh run execs java: the JVM is the master; the base dir tells this instance apart
    base = re.escape(str(tomcat_instance.base))
    pattern = rf"-Dcatalina\.base={base} .*org\.apache\.catalina\.startup\.Bootstrap"
    result = ProcessProbe(ProcessParams(cmdline=pattern)).run()

    assert result.ok, result.reason
    assert result.values["master_alive"] == 1
