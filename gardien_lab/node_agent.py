"""``python3 -m gardien_lab.node_agent CONFIG NODE STATE_DIR GROUP...``: the node's own agent
(:class:`failover_hook.agent.LocalAgent`) acquires each group, in order, as the node's hook
would; one outcome per line on stdout, as the hook's API answers it (JSON).

``lab up`` runs it on a node (through the node's nsenter prefix, so its mounts, addresses and
services are the node's) when the node's hook does not run: before the full stack starts, or
with ``--groups-only``.  It journals in the node's state folder, as the hook does.  With no hook
running there is no peer to ask whether it holds the group (:mod:`failover_hook.guard`): the agent
gets no peers, and ``lab up`` itself establishes first that the group runs nowhere, from every
node's own mount table and addresses (:func:`gardien_lab.services.where`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from failover_hook.agent import LocalAgent
from failover_hook.trigger import API
from gardien import exitcodes
from gardien.config.loader import load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m gardien_lab.node_agent")
    parser.add_argument("config", type=Path)
    parser.add_argument("node")
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("groups", nargs="+")
    args = parser.parse_args(argv)
    agent = LocalAgent(load_config(args.config), args.node, args.state_dir)
    for group in args.groups:
        outcome = agent.acquire(group, trigger=API)  # an operator's acquire, as `gardien acquire`
        print(json.dumps(outcome.to_json()), flush=True)
        if not outcome.ok:
            return exitcodes.FAILURE
    return exitcodes.OK


if __name__ == "__main__":
    sys.exit(main())
