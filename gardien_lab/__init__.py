"""The two-node lab: real daemons in network namespaces, built and torn down by ``gardien lab``."""
