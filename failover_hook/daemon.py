"""The ``gardien hook`` daemon: the engine, the hook and its web server; SIGHUP reloads the
config (:meth:`failover_hook.hook.Hook.reload`), SIGTERM and SIGINT stop it."""

from __future__ import annotations

import argparse
import logging
import queue
import signal
import threading
from pathlib import Path
from types import FrameType

import prometheus_client

from failover_hook import console
from failover_hook.agent import LocalAgent
from failover_hook.app import create_app
from failover_hook.client import HttpPeer, read_token
from failover_hook.command import local_node
from failover_hook.fencing import Fencer
from failover_hook.hook import Engine, Hook
from failover_hook.journal import Journal
from failover_hook.locks import GroupLocks
from failover_hook.move import Mover
from failover_hook.network import NetworkCheck
from failover_hook.processes import become_subreaper, reap_orphans_until
from failover_hook.prometheus import PrometheusReader
from failover_hook.silence import SilenceCheck
from gardien import exitcodes
from gardien.command_runner import INHERIT, CommandRunner
from gardien.config import ClusterConfig, load_config
from gardien.errors import ConfigError
from gardien.memory import limit_malloc_arenas
from gardien.node.reachability import Pinger
from gardien.web import (
    DEFAULT_THREADS,
    DEFAULT_UNAUTHENTICATED_PATHS,
    Authenticator,
    BearerToken,
    WebConfig,
    WebServer,
    load_web_config,
    node_listen_address,
)

log = logging.getLogger(__name__)


def build_hook(config: ClusterConfig, node: str, state_dir: Path, dry_run: bool) -> Hook:
    state_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal.in_state_dir(state_dir)
    runner = CommandRunner(env=INHERIT)  # service commands get the hook's environment
    pinger = Pinger()  # the exporter's network collector pings the same way

    def engine(config: ClusterConfig, locks: GroupLocks) -> Engine:
        """The parts that read the config; built again by each reload."""
        token = read_token(config)
        peers = {n: HttpPeer.for_node(config, n, token) for n in config.nodes if n != node}

        def silence(peers: dict[str, HttpPeer]) -> SilenceCheck:
            url = config.hook.prometheus_url
            timeout = config.hook.request_timeout
            return SilenceCheck(
                config.cluster,
                lambda n, t: peers[n].answers_status(t),
                timeout,
                PrometheusReader(url, timeout) if url else None,
            )

        # the agent's acquire asks the peers whether they hold the group (failover_hook.guard)
        agent = LocalAgent(
            config, node, state_dir, runner=runner, journal=journal, locks=locks, peers=peers
        )
        mover = Mover(config, node, journal, agent, peers, Fencer(config, runner), silence(peers))
        network = NetworkCheck(
            config.network,
            pinger.round,
            # a round lasts at most the echo timeout: the watcher's result is never older
            max_age=NETWORK_REFRESH + (config.network.timeout if config.network else 0) + 0.5,
        )
        return Engine(agent, mover, peers, network)

    return Hook(
        config,
        node,
        state_dir,
        build=engine,
        journal=journal,
        dry_run=dry_run,
        workers=max(2, min(8, len(config.groups))),
    )


def check_tls_agreement(config: ClusterConfig, web: WebConfig, web_file: Path | None) -> None:
    """Peers call this hook with https exactly when ``hook.tls_ca_file`` is set: a hook serving
    the other scheme would look unreachable to them, and an unreachable node gets fenced."""
    where = str(web_file or "--web.config.file")
    if config.hook.tls_ca_file and web.tls is None:
        raise ConfigError(
            where,
            [
                f"hook.tls_ca_file is set in {config.source}: peers call this hook with https, "
                "but the web config serves plain HTTP (no tls_server_config)"
            ],
        )
    if web.tls is not None and not config.hook.tls_ca_file:
        raise ConfigError(
            where,
            [
                f"tls_server_config: this hook serves https, but hook.tls_ca_file is not set in "
                f"{config.source}, so its peers would call it with plain HTTP"
            ],
        )


NETWORK_REFRESH = 1.0
"""Seconds between two rounds of the hook's network check (its verdict in every status)."""


def request_threads(config: ClusterConfig) -> int:
    """One request thread per group that may be acquiring or releasing here at once (a request
    lasts as long as the group's start or stop; at most 56), plus the default for status calls,
    webhook deliveries and scrapes, which must not wait behind them."""
    return DEFAULT_THREADS + min(len(config.groups), 56)


def run(args: argparse.Namespace) -> int:
    limit_malloc_arenas()
    # no ``_created`` series next to every counter: not in the metrics contract, and Prometheus
    # does not need them
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    # before any command runs: a daemon that detaches from a start command becomes our child, and
    # judging it dead does not wait for a PID 1 that reaps late (docs/lab.md section 10)
    subreaper = become_subreaper()
    if not subreaper:
        log.warning("cannot become a child subreaper: detached daemons are reaped by PID 1")
    config = load_config(args.config_file)
    node = args.node or local_node(config)
    if node not in config.nodes:
        raise ConfigError(str(config.source), [f"--node {node}: not a node of the config"])
    web_config = load_web_config(args.web_config_file)
    check_tls_agreement(config, web_config, args.web_config_file)
    hook = build_hook(config, node, args.state_dir, args.dry_run)
    authenticators: list[Authenticator] = []
    token = read_token(config)
    # the console's login form takes the token; a session it opens is valid under /ui/ only
    sessions = console.Sessions(
        token,
        secure=web_config.tls is not None,
        open_access=not token and not web_config.basic_auth_users,
    )
    if token:
        authenticators += [BearerToken(token), sessions]
    elif not web_config.basic_auth_users:
        log.warning(
            "no hook.token_file and no basic_auth_users: the API is open to anyone who reaches it"
        )
    # before recovery and before the API serves: a node that was down while an operator froze
    # or unfroze learns it from the peers that answer (and gives them what they missed)
    sync = hook.cluster.sync_freeze()
    log.info(
        "freeze state exchanged with %s%s",
        ", ".join(sync.reached) or "no peer",
        f" (not with {', '.join(sync.missed)}: unreachable)" if sync.missed else "",
    )
    if not args.dry_run:
        hook.recover()
    server = WebServer(
        create_app(hook, sessions),
        args.listen_address or node_listen_address(config, config.hook.port, node),
        web_config,
        authenticators=authenticators,
        unauthenticated_paths=DEFAULT_UNAUTHENTICATED_PATHS | console.UNAUTHENTICATED_PATHS,
        refusal_pages={"/ui": console.REFUSAL_PAGE},
        threads=request_threads(config),
        server_name="gardien-hook",
    )
    hook.metrics.registry.register(server.metrics)
    stop = threading.Event()
    threading.Thread(  # a reload may add or change the network targets: always watch
        target=hook.watch_network, args=(stop, NETWORK_REFRESH), name="network", daemon=True
    ).start()
    if subreaper:
        threading.Thread(
            target=reap_orphans_until, args=(stop,), name="reaper", daemon=True
        ).start()

    events: queue.SimpleQueue[str] = queue.SimpleQueue()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # the main loop acts: a reload claims every group, which a signal handler must not
        events.put("reload" if signum == signal.SIGHUP else "stop")

    for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    server.start()
    log.info(
        "hook of %s ready (cluster %s, %d groups%s)",
        node,
        config.cluster,
        len(config.groups),
        ", dry run" if args.dry_run else "",
    )
    try:
        while events.get() != "stop":
            log.info("SIGHUP: reloading %s", hook.config.source)
            hook.reload()
    finally:
        log.info("stopping")
        stop.set()
        server.stop()
        hook.shutdown()
    return exitcodes.OK
