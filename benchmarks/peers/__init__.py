"""The peers (keepalived, Pacemaker + Corosync) on a two-node namespace lab of their own.

The same kind of lab as gardien's (docs/lab.md, docs/benchmarks.md): nodes
``pr-a`` and ``pr-b`` (network namespace + holder, own /run and /dev/shm), a client ``pr-c``,
a public switch (VIP, client) and a cluster switch, an ext4 image on a loop device, Apache.
Modules: :mod:`.lab` builds the namespaces and volume and runs commands on them, :mod:`.keepalived`
and :mod:`.pacemaker` set up each tool, :mod:`.teardown` removes everything (also after a
crash), :mod:`.failover` and :mod:`.idle` measure.
"""
