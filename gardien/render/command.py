"""``gardien render rules|alertmanager|prometheus|dashboards``: write the monitoring files of a
cluster config, to stdout or into ``--out DIR``.

The flags of each kind are generated from the fields of its options dataclass
(:func:`gardien.options.add_field_options`): the dataclass declares each flag, its help and its
default once, and the help shows that default.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from gardien import exitcodes, options
from gardien.config import ClusterConfig, load_config
from gardien.render.alertmanager import AlertmanagerOptions, render_alertmanager
from gardien.render.common import RULES_FILE, dump_yaml
from gardien.render.dashboards import DashboardOptions, render_dashboards, render_provisioning
from gardien.render.prometheus import PrometheusOptions, render_prometheus
from gardien.render.rules import RuleOptions, render_rules

log = logging.getLogger(__name__)

ALERTMANAGER_FILE = "alertmanager.yml"
PROMETHEUS_FILE = "prometheus.yml"
DASHBOARDS_DIR = "dashboards"
PROVISIONING_FILE = "provisioning/dashboards/gardien.yml"

OPTIONS = {
    "rules": RuleOptions,
    "alertmanager": AlertmanagerOptions,
    "prometheus": PrometheusOptions,
    "dashboards": DashboardOptions,
}
"""Each kind of file and the dataclass of its flags."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "render", help="write rule, Alertmanager, scrape and dashboard files for a config"
    )
    kinds = parser.add_subparsers(dest="render_kind", metavar="KIND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    options.CONFIG_FILE.add_to(common)
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
    options.SKIP_FILE_CHECKS.add_to(common)
    for kind, help, run in (
        ("rules", "Prometheus recording and alert rules", run_rules),
        ("alertmanager", "Alertmanager routes and hooks", run_alertmanager),
        ("prometheus", "Prometheus scrape config", run_prometheus),
        ("dashboards", "Grafana dashboards", run_dashboards),
    ):
        renderer = kinds.add_parser(kind, parents=[common], help=help)
        options.add_field_options(renderer, OPTIONS[kind])
        renderer.set_defaults(func=run)


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
    rules = render_rules(config, options.from_args(RuleOptions, args))
    return _emit(args, {RULES_FILE: dump_yaml(rules, _header("rules", config))})


def run_alertmanager(args: argparse.Namespace) -> int:
    config = _config(args)
    routes = render_alertmanager(config, options.from_args(AlertmanagerOptions, args))
    return _emit(args, {ALERTMANAGER_FILE: dump_yaml(routes, _header("alertmanager", config))})


def run_prometheus(args: argparse.Namespace) -> int:
    config = _config(args)
    scrape = render_prometheus(config, options.from_args(PrometheusOptions, args))
    return _emit(args, {PROMETHEUS_FILE: dump_yaml(scrape, _header("prometheus", config))})


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
    provisioning = render_provisioning(options.from_args(DashboardOptions, args).dashboards_path)
    files[PROVISIONING_FILE] = dump_yaml(provisioning, _header("dashboards", config))
    return _emit(args, files)
