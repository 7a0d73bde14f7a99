"""The exporter's malloc arenas: two, however many probe threads it runs (exporter/daemon.py).

Counted from the process's own memory map: glibc places each arena but the main one (the
``[heap]``) at an address aligned on its heap size, 64 MiB on 64-bit Linux, reserving the whole
64 MiB at once; a thread stack (8 MiB) or a module's mapping is neither.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.exporter import ExporterProcess

_ARENA_HEAP = 64 << 20
_PROBES = 12


def _arena_heaps(pid: int) -> int:
    """Mappings that start on a 64 MiB boundary and, with the reserve after them, span 64 MiB."""
    spans = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        start, end = (int(part, 16) for part in fields[0].split("-"))
        spans.append((start, end, len(fields) > 5))
    heaps = 0
    for i, (start, end, named) in enumerate(spans):
        if named or start % _ARENA_HEAP:
            continue
        reach = end
        for next_start, next_end, next_named in spans[i + 1 :]:
            if next_named or next_start != reach or next_end - start > _ARENA_HEAP:
                break
            reach = next_end
        heaps += reach - start == _ARENA_HEAP
    return heaps


def _scraped_arenas(folder: Path) -> int:
    """Arenas of an exporter of many probes, scraped a few times (each probe on its thread)."""
    probes = "\n".join(
        f"          - tcp: {{name: p{i}, host: 127.0.0.1, port: 1}}" for i in range(_PROBES)
    )
    folder.mkdir()
    config = folder / "cluster.yml"
    config.write_text(
        "cluster: t\nnodes: {node1: {address: 127.0.0.1}}\ngroups:\n  g:\n    nodes: [node1]\n"
        f"    services:\n      - name: s\n        probes:\n{probes}\n"
    )
    exporter = ExporterProcess(config, log_level="warning")
    try:
        exporter.wait_ready()
        for _ in range(3):
            assert exporter.scrape().status_code == 200
        return _arena_heaps(exporter.process.pid)
    finally:
        exporter.stop()


@pytest.mark.timeout(120)
def test_the_exporter_keeps_two_malloc_arenas_unless_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    limited = _scraped_arenas(tmp_path / "limited")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    asked = _scraped_arenas(tmp_path / "asked")

    assert limited == 1  # besides the main arena
    assert asked > 1  # the count sees the arenas of a process given more
