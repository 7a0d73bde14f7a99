"""``gardien render rules|alertmanager|prometheus|dashboards``: write the monitoring files of a
cluster config, to stdout or into ``--out DIR``."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

from gardien import exitcodes
from gardien.config import ClusterConfig, default_config_path, load_config
from gardien.render.alertmanager import AlertmanagerOptions, render_alertmanager
from gardien.render.common import dump_yaml
from gardien.render.dashboards import render_dashboards, render_provisioning
from gardien.render.prometheus import PrometheusOptions, render_prometheus
from gardien.render.rules import RuleOptions, render_rules
from gardien.types import parse_duration

log = logging.getLogger(__name__)

RULES_FILE = "rules.yml"
ALERTMANAGER_FILE = "alertmanager.yml"
PROMETHEUS_FILE = "prometheus.yml"
DASHBOARDS_DIR = "dashboards"
PROVISIONING_FILE = "provisioning/dashboards/gardien.yml"


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "render", help="write rule, Alertmanager, scrape and dashboard files for a config"
    )
    kinds = parser.add_subparsers(dest="render_kind", metavar="KIND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config.file",
        dest="config_file",
        type=Path,
        default=None,
        help=f"the cluster config (default $GARDIEN_CONFIG or {default_config_path()})",
    )
    common.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the file(s) into DIR instead of printing them",
    )
    common.add_argument(
        "--hook.token-file",
        dest="token_file",
        type=Path,
        default=None,
        metavar="PATH",
        help="the hooks' token file as the Prometheus/Alertmanager host sees it "
        "(default: hook.token_file of the config)",
    )
    common.add_argument(
        "--hook.ca-file",
        dest="hook_ca_file",
        type=Path,
        default=None,
        metavar="PATH",
        help="the CA of the hooks' certificates as the Prometheus/Alertmanager host sees it "
        "(default: hook.tls_ca_file of the config)",
    )
    common.add_argument(
        "--skip-file-checks",
        action="store_true",
        help="do not require the files the config names (token, credentials) to exist here",
    )

    rules = kinds.add_parser("rules", parents=[common], help="Prometheus recording and alert rules")
    defaults = RuleOptions()
    rules.add_argument(
        "--for.group-failed",
        dest="group_failed_for",
        type=_duration,
        default=defaults.group_failed_for,
        metavar="DURATION",
        help="how long a probe of the active node fails before failover (3s)",
    )
    rules.add_argument(
        "--for.node-isolated",
        dest="node_isolated_for",
        type=_duration,
        default=defaults.node_isolated_for,
        metavar="DURATION",
        help="how long a node reaches no network target before failover (5s)",
    )
    rules.add_argument(
        "--for.node-down",
        dest="node_down_for",
        type=_duration,
        default=defaults.node_down_for,
        metavar="DURATION",
        help="how long both daemons of a node are unreachable before fencing (10s)",
    )
    rules.add_argument(
        "--runbook-url",
        dest="runbook",
        default=defaults.runbook,
        metavar="URL",
        help="where docs/runbook.md is published (default docs/runbook.md)",
    )
    rules.set_defaults(func=run_rules)

    am = kinds.add_parser("alertmanager", parents=[common], help="Alertmanager routes and hooks")
    am_defaults = AlertmanagerOptions()
    am.add_argument(
        "--group-wait",
        type=_duration,
        default=am_defaults.group_wait,
        metavar="DURATION",
        help="wait before the first failover notification (0s)",
    )
    am.add_argument(
        "--group-interval",
        type=_duration,
        default=am_defaults.group_interval,
        metavar="DURATION",
        help="wait before an update of a failover group (200ms)",
    )
    am.add_argument(
        "--repeat-interval",
        type=_duration,
        default=am_defaults.repeat_interval,
        metavar="DURATION",
        help="re-send a firing failover alert this often (5m)",
    )
    am.set_defaults(func=run_alertmanager)

    prom = kinds.add_parser("prometheus", parents=[common], help="Prometheus scrape config")
    p_defaults = PrometheusOptions()
    prom.add_argument(
        "--scrape-interval",
        type=_duration,
        default=p_defaults.scrape_interval,
        metavar="DURATION",
        help="(1s)",
    )
    prom.add_argument(
        "--scrape-timeout",
        type=_duration,
        default=p_defaults.scrape_timeout,
        metavar="DURATION",
        help="(900ms)",
    )
    prom.add_argument(
        "--evaluation-interval",
        type=_duration,
        default=p_defaults.evaluation_interval,
        metavar="DURATION",
        help="(1s)",
    )
    prom.add_argument(
        "--rule-file",
        dest="rule_files",
        action="append",
        metavar="PATH",
        help=f"rule file to load, repeatable (default {RULES_FILE})",
    )
    prom.add_argument(
        "--alertmanager",
        dest="alertmanagers",
        action="append",
        metavar="HOST:PORT",
        help="repeatable (default 127.0.0.1:9093)",
    )
    prom.add_argument(
        "--scheme",
        choices=["http", "https"],
        default=p_defaults.scheme,
        help="https when the exporters serve TLS through --web.config.file (the hooks: https "
        "when hook.tls_ca_file is set)",
    )
    prom.set_defaults(func=run_prometheus)

    boards = kinds.add_parser("dashboards", parents=[common], help="Grafana dashboards")
    boards.add_argument(
        "--dashboards-path",
        default="/var/lib/grafana/dashboards/gardien",
        help="where Grafana reads the dashboards (for the provisioning file)",
    )
    boards.set_defaults(func=run_dashboards)


def _config(args: argparse.Namespace) -> ClusterConfig:
    config = load_config(args.config_file, check_files=not args.skip_file_checks)
    # Where the monitoring host keeps the token and the CA may differ from the nodes' paths.
    paths = {"token_file": args.token_file, "tls_ca_file": args.hook_ca_file}
    given = {key: path for key, path in paths.items() if path is not None}
    if given:
        config = config.model_copy(update={"hook": config.hook.model_copy(update=given)})
    return config


def _header(kind: str, config: ClusterConfig) -> str:
    return (
        f"Rendered by `gardien render {kind}` for cluster {config.cluster}.\n"
        "Change the cluster config or the render flags and render again; do not edit."
    )


def _emit(args: argparse.Namespace, files: dict[str, str]) -> int:
    if args.out is None:
        print("\n".join(files.values()), end="")
        return exitcodes.OK
    for name, text in files.items():
        path = args.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        log.info("wrote %s", path)
    return exitcodes.OK


def run_rules(args: argparse.Namespace) -> int:
    config = _config(args)
    options = RuleOptions(
        group_failed_for=args.group_failed_for,
        node_isolated_for=args.node_isolated_for,
        node_down_for=args.node_down_for,
        runbook=args.runbook,
    )
    text = dump_yaml(render_rules(config, options), _header("rules", config))
    return _emit(args, {RULES_FILE: text})


def run_alertmanager(args: argparse.Namespace) -> int:
    config = _config(args)
    options = AlertmanagerOptions(
        group_wait=args.group_wait,
        group_interval=args.group_interval,
        repeat_interval=args.repeat_interval,
    )
    text = dump_yaml(render_alertmanager(config, options), _header("alertmanager", config))
    return _emit(args, {ALERTMANAGER_FILE: text})


def run_prometheus(args: argparse.Namespace) -> int:
    config = _config(args)
    options = replace(
        PrometheusOptions(),
        scrape_interval=args.scrape_interval,
        scrape_timeout=args.scrape_timeout,
        evaluation_interval=args.evaluation_interval,
        scheme=args.scheme,
    )
    if args.rule_files:
        options = replace(options, rule_files=tuple(args.rule_files))
    if args.alertmanagers:
        options = replace(options, alertmanagers=tuple(args.alertmanagers))
    text = dump_yaml(render_prometheus(config, options), _header("prometheus", config))
    return _emit(args, {PROMETHEUS_FILE: text})


def run_dashboards(args: argparse.Namespace) -> int:
    config = _config(args)
    boards = render_dashboards(config)
    if args.out is None:
        print(json.dumps(boards, indent=2))
        return exitcodes.OK
    files = {
        f"{DASHBOARDS_DIR}/{name}": json.dumps(board, indent=2) + "\n"
        for name, board in boards.items()
    }
    files[PROVISIONING_FILE] = dump_yaml(
        render_provisioning(args.dashboards_path), _header("dashboards", config)
    )
    return _emit(args, files)
