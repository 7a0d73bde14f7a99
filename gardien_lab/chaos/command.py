"""``gardien lab chaos [--seed N] [--faults K] [--kinds a,b] [--output text|json]``."""

from __future__ import annotations

import argparse
import logging
import random
import sys

from gardien import exitcodes
from gardien_lab import lifecycle
from gardien_lab.chaos import report
from gardien_lab.chaos.campaign import Campaign, Trial
from gardien_lab.chaos.kinds import ALL_KINDS
from gardien_lab.demo import wait_scraped
from gardien_lab.netns import LabError
from gardien_lab.topology import Lab


def _kinds(value: str) -> list[str]:
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in ALL_KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(
            f"unknown fault kind(s) {', '.join(unknown) or '(none given)'}; "
            f"the kinds: {', '.join(ALL_KINDS)}"
        )
    return kinds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, help="replay this campaign (default: a random seed)")
    parser.add_argument("--faults", type=int, default=12, help="faults to inject (default 12)")
    parser.add_argument(
        "--kinds", type=_kinds, default=list(ALL_KINDS), help="comma-separated fault kinds"
    )
    parser.add_argument("--output", choices=("text", "json"), default="text")


def chaos(lab: Lab, seed: int | None, faults: int, kinds: list[str], output: str) -> int:
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    # first, so that any run can be replayed, whatever happens next
    print(f"gardien lab chaos: seed {seed}", file=sys.stderr, flush=True)
    logging.getLogger("gardien_lab").setLevel(logging.INFO)
    lifecycle.up(lab)
    if not wait_scraped(lab, 90):
        raise LabError("Prometheus does not scrape every exporter and hook")

    def progress(trial: Trial) -> None:
        told = "; ".join(trial.faults) or "nothing to act on"
        state = "recovered" if trial.recovery is not None else "NOT recovered"
        print(f"trial {trial.index}: {trial.kind}: {told}: {state}, {trial.moves} move(s), "
              f"{len(trial.violations)} violation(s)", file=sys.stderr, flush=True)  # fmt: skip

    result = Campaign(lab, seed, faults, kinds).run(progress)
    print(report.as_json(result) if output == "json" else report.text(result))
    return exitcodes.FAILURE if result.all_violations else exitcodes.OK
