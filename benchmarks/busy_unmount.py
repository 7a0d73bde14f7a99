"""Busy unmount: stop 10 volumes, each held open by a process, with the volume resource.

Each volume is a loop-mounted ext4 image with a process holding a file open on it; the holders
are either running or stopped with SIGSTOP (they act on TERM only after CONT).  The stop is the
resource's own: umount, busy -> ``mountpoint -q`` then ``fuser -m``, CONT+TERM, retry (then KILL).
The benchmark runs in a private mount namespace of its own, so nothing is mounted anywhere else.

    sudo python3 -m benchmarks.busy_unmount [--volumes 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gardien.config  # noqa: F401 - import order (see tests/probes/conftest.py)
from failover_hook.resources.volume import Volume
from gardien.command_runner import CommandRunner
from gardien.config.model import VolumeConfig


def run(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout


def one_round(root: Path, count: int, stopped: bool) -> tuple[float, list[str]]:
    loops, holders, volumes = [], [], []
    try:
        for i in range(count):
            image, mountpoint = root / f"v{i}.img", root / "mnt" / f"v{i}"
            mountpoint.mkdir(parents=True, exist_ok=True)
            run(["truncate", "-s", "16M", str(image)])
            run(["mkfs.ext4", "-q", "-F", str(image)])
            loops.append(run(["losetup", "-f", "--show", str(image)]).strip())
            run(["mount", loops[-1], str(mountpoint)])
            (mountpoint / "held").write_text("x")
            holder = subprocess.Popen(["sh", "-c", f"exec sleep 600 3<{mountpoint}/held"])
            holders.append(holder)
            volumes.append(
                Volume(VolumeConfig(device=loops[-1], mountpoint=str(mountpoint)), CommandRunner())
            )
        time.sleep(0.2)  # every holder has opened its file
        if stopped:
            for holder in holders:
                holder.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        messages = [volume.stop().message for volume in volumes]
        return time.monotonic() - started, messages
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
        for volume in volumes:
            subprocess.run(["umount", volume.mountpoint], capture_output=True, check=False)
        for loop in loops:
            subprocess.run(["losetup", "-d", loop], capture_output=True, check=False)


def inner(count: int, rounds: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="gardien-busy-unmount-"))
    results: dict[str, list[float]] = {"running holders": [], "stopped holders (SIGSTOP)": []}
    try:
        for _ in range(rounds):
            for label, stopped in (("running holders", False), ("stopped holders (SIGSTOP)", True)):
                took, messages = one_round(root, count, stopped)
                assert all("after ending 1 process(es)" in m for m in messages), messages
                results[label].append(took)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("| holders | volumes | rounds | total stop, median (s) | max (s) | per volume (s) |")
    print("|---|---|---|---|---|---|")
    for label, times in results.items():
        med = statistics.median(times)
        print(
            f"| {label} | {count} | {rounds} | {med:.3f} | {max(times):.3f} | {med / count:.3f} |"
        )
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.volumes, args.rounds)
        return
    argv = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        sys.executable,
        "-m",
        "benchmarks.busy_unmount",
        "--inner",
        "--volumes",
        str(args.volumes),
        "--rounds",
        str(args.rounds),
    ]
    sys.exit(subprocess.run(argv, check=False, env={**os.environ}).returncode)


if __name__ == "__main__":
    main()
