"""Wall time of a move of the Apache group: gardien's mover vs a plain shell script, side by side.

Both move the same group (ext4 loop volume, VIP, real Apache on the volume) between two node
namespaces and do the same work: stop Apache and wait for its processes to go, remove the VIP,
unmount; mount, duplicate address check (arping -0, 0.5 s), add the VIP, two gratuitous ARPs 50 ms
apart, start Apache and wait until the page answers on the VIP.  The rounds alternate (gardien
node1 -> node2, script node2 -> node1, ...), so both see the same machine state.

    sudo python3 -m benchmarks.failover_move [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import gardien.config  # noqa: F401 - import order (see tests/probes/conftest.py)
from tests.support.failover_cluster import GROUP, PAGE, Cluster, cluster


def release_script(c: Cluster) -> str:
    inst = c.apache
    return f"""set -e
PID=$(cat {inst.pidfile})
/usr/sbin/apache2 -f {inst.conf_file} -k stop
while [ -e /proc/$PID ] && ! grep -q '^State:.Z' /proc/$PID/status; do sleep 0.05; done
ip addr del {c.vip}/24 dev eth0
umount {c.mountpoint}
"""


def acquire_script(c: Cluster) -> str:
    inst = c.apache
    garp = f"arping -q -U -S {c.vip} -i eth0 -c 1 -w 0 {c.vip} || true"
    return f"""set -e
mount -t ext4 {c.loop} {c.mountpoint}
if arping -0 -c 3 -W 0.1 -w 0.5 -i eth0 {c.vip} >/dev/null; then echo duplicate; exit 1; fi
ip addr add {c.vip}/24 dev eth0
{garp}
sleep 0.05
{garp}
/usr/sbin/apache2 -f {inst.conf_file} -k start
until curl -s -m 2 -o /dev/null http://{c.vip}/; do sleep 0.1; done
"""


def shell_move(c: Cluster, source: str, target: str) -> float:
    started = time.monotonic()
    c.nodes[source].run(["sh", "-c", release_script(c)])
    c.nodes[target].run(["sh", "-c", acquire_script(c)])
    return time.monotonic() - started


def gardien_move(c: Cluster, source: str, target: str) -> float:
    started = time.monotonic()
    outcome = c.outcome(target, "move", source=source, target=target)
    took = time.monotonic() - started
    if not outcome.ok:
        raise RuntimeError(outcome.message)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="moves of each kind (default 10)")
    args = parser.parse_args()
    times: dict[str, list[float]] = {"gardien": [], "shell": []}
    with cluster() as c:
        assert c.outcome("node1", "acquire").ok
        where = "node1"
        for i in range(2 * args.rounds):
            other = "node2" if where == "node1" else "node1"
            kind = "gardien" if i % 2 == 0 else "shell"
            move = gardien_move if kind == "gardien" else shell_move
            times[kind].append(move(c, where, other))
            if c.page() != PAGE + "\n" or not c.mounted(other):
                raise RuntimeError(f"round {i}: the page does not answer after the {kind} move")
            where = other
        # the shell moves leave the agents' held markers stale; tell the last holder it holds it
        c.outcome(where, "acquire")
    med = {k: statistics.median(v) for k, v in times.items()}
    print("| mover | moves | median (s) | min (s) | max (s) |\n|---|---|---|---|---|")
    for kind, values in times.items():
        low, high = min(values), max(values)
        print(f"| {kind} | {len(values)} | {med[kind]:.3f} | {low:.3f} | {high:.3f} |")
    print(f"ratio gardien/shell (medians): {med['gardien'] / med['shell']:.3f}")
    print(json.dumps({"group": GROUP, "times": times}))


if __name__ == "__main__":
    main()
