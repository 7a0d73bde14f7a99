"""The daemons' malloc arenas, limited before their threads start (exporter and hook)."""

from __future__ import annotations

import ctypes
import os

_M_ARENA_MAX = -8  # glibc's malloc.h
MALLOC_ARENAS = 2
"""glibc gives each thread that allocates an arena of its own, up to eight per core, and keeps
what each holds.  The exporter runs every probe and collector of a scrape on a thread of its own
(exporter/runner.py): a two-core node's exporter held 16.  Two cost the exporter 2.3 MiB less RSS
after 600 scrapes (1.7 MiB net of ctypes, imported for this), with no measurable CPU
(docs/benchmarks.md, "RSS of the exporter"); the hook serves, watches the network and decides
on threads too."""


def limit_malloc_arenas() -> None:
    """At most :data:`MALLOC_ARENAS` malloc arenas, unless ``MALLOC_ARENA_MAX`` says otherwise;
    before any thread starts (a thread keeps the arena it was given).  A no-op without glibc."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
