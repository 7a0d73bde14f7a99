"""What a node knows about itself, read in one place for the exporter and the failover engine.

One module per fact, each reading the kernel's own tables through injectable roots (``proc_root``,
``sys_root``) or a command runner, so that tests point them at recorded files or run them inside a
test node:

- :mod:`~gardien.node.mounts`: the mount table (mountinfo), loop devices with their backing files;
- :mod:`~gardien.node.mmp`: ext4 multi-mount protection of a device (``dumpe2fs -h``);
- :mod:`~gardien.node.addresses`: the addresses on each interface;
- :mod:`~gardien.node.reachability`: a round of ICMP echoes to the targets, and the link state of an
  interface;
- :mod:`~gardien.node.verdict`: the network verdict from those (ok, degraded, isolated), which
  the hook decides on and the rules mirror;
- :mod:`~gardien.node.liveness`: processes as /proc shows them (state, zombies, start time);
- :mod:`~gardien.node.holding`: the one answer to "does this node hold the group?", built on the
  first two and the agent's held markers (:mod:`gardien.state`).
"""
