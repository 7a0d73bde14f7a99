"""The kernel's own log, read by the tests that prove the kernel refused something."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

MMP_REFUSAL = "Device is already active on another node"
"""What ext4 logs when its multi-mount protection refuses a mount (fs/ext4/mmp.c)."""


@contextlib.contextmanager
def kernel_messages() -> Iterator[list[str]]:
    """The kernel's log lines written while the block runs (``/dev/kmsg`` from its end)."""
    lines: list[str] = []
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        os.lseek(fd, 0, os.SEEK_END)
        yield lines
        while True:
            try:
                record = os.read(fd, 8192)
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    break
                if exc.errno == errno.EPIPE:  # overwritten while read: go on with the next
                    continue
                raise
            lines.append(record.decode(errors="replace").split(";", 1)[-1].strip())
    finally:
        os.close(fd)


def mmp_refused(messages: list[str], device: str) -> bool:
    """Whether ext4's MMP refused a mount of ``device`` (``/dev/loop6``) among ``messages``."""
    name = os.path.basename(device)
    return any(MMP_REFUSAL in m and f"(device {name})" in m for m in messages)
