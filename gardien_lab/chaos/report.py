"""The campaign's report: per fault kind, trials, recoveries within the bound, recovery time median
and max, moves and violations; then the writes' audit and every violation with what it takes to
replay it (the seed, the fault sequence up to it) and the checker's samples around it."""

from __future__ import annotations

import dataclasses
import json
import statistics
from typing import Any

from gardien_lab.chaos.campaign import Result, Trial, Violation


@dataclasses.dataclass(frozen=True)
class KindRow:
    kind: str
    trials: int
    recovered: int
    recovery_median: float | None
    """From the heal to every group healthy on one node (bounded)."""
    recovery_max: float | None
    outage_median: float | None
    """From the fault to every group healthy on one node."""
    outage_max: float | None
    moves: int
    violations: int


def per_kind(trials: list[Trial]) -> list[KindRow]:
    rows = []
    for kind in sorted({t.kind for t in trials}):
        of_kind = [t for t in trials if t.kind == kind]
        times = [t.recovery for t in of_kind if t.recovery is not None]
        outages = [t.outage for t in of_kind if t.outage is not None]
        rows.append(
            KindRow(
                kind,
                len(of_kind),
                len(times),
                statistics.median(times) if times else None,
                max(times) if times else None,
                statistics.median(outages) if outages else None,
                max(outages) if outages else None,
                sum(t.moves for t in of_kind),
                sum(len(t.violations) for t in of_kind),
            )
        )
    return rows


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _sequence(result: Result, upto: int | None) -> list[str]:
    trials = result.trials if upto is None else result.trials[:upto]
    return [f"{t.index}. {t.kind}: {'; '.join(t.faults) or 'nothing to act on'}" for t in trials]


def _violation_text(result: Result, v: Violation) -> list[str]:
    where = f"trial {v.trial}" if v.trial is not None else "at the end"
    lines = [f"* {v.invariant} ({where}): {v.detail}"]
    lines.append(f"  replay: gardien lab chaos --seed {result.seed} --faults {len(result.trials)}")
    lines += ["  faults up to it:", *(f"    {s}" for s in _sequence(result, v.trial))]
    if v.samples:
        lines += ["  the checker's samples around it:", *(f"    {s}" for s in v.samples)]
    return lines


def text(result: Result) -> str:
    lines = [
        f"gardien lab chaos on lab {result.lab!r}: seed {result.seed}, {len(result.trials)} faults"
    ]
    lines.append("settings: " + ", ".join(f"{k} {v}" for k, v in result.settings.items()))
    lines.append("")
    for t in result.trials:
        outcome = (
            f"healthy {_seconds(t.outage)} after the fault ({_seconds(t.recovery)} after the heal)"
            if t.recovery is not None
            else "NOT RECOVERED"
        )
        lines.append(
            f"{t.index:3}. {t.kind:20} {outcome}, {t.moves} move(s)"
            + (f", {len(t.violations)} VIOLATION(S)" if t.violations else "")
        )
        lines += [f"       {f}" for f in t.faults] + [f"       ({n})" for n in t.notes]
    lines += ["", "recovery: from the heal (bounded); outage: from the fault; to every group "
              "healthy on one node", f"{'kind':20} {'trials':>6} {'recovered':>9} "
              f"{'recovery median':>15} {'max':>7} {'outage median':>13} {'max':>7} "
              f"{'moves':>5} {'violations':>10}"]  # fmt: skip
    for r in per_kind(result.trials):
        lines.append(
            f"{r.kind:20} {r.trials:6} {r.recovered:9} {_seconds(r.recovery_median):>15} "
            f"{_seconds(r.recovery_max):>7} {_seconds(r.outage_median):>13} "
            f"{_seconds(r.outage_max):>7} {r.moves:5} {r.violations:10}"
        )
    if result.audit is not None:
        lines.append("")
        missing = result.audit.missing
        lines.append(
            "writes: "
            + ", ".join(
                f"{target} {count} acknowledged, {len(missing.get(target, []))} missing"
                for target, count in result.audit.acknowledged.items()
            )
        )
    lines.append(f"checker: {result.samples} samples of every node's mounts and addresses")
    violations = result.all_violations
    lines.append("")
    lines.append(f"violations: {len(violations) or 'none'}")
    for v in violations:
        lines += _violation_text(result, v)
    return "\n".join(lines)


def as_json(result: Result) -> str:
    data: dict[str, Any] = {
        "seed": result.seed,
        "lab": result.lab,
        "settings": result.settings,
        "trials": [
            {**dataclasses.asdict(t), "recovery": t.recovery, "outage": t.outage}
            for t in result.trials
        ],
        "kinds": [dataclasses.asdict(r) for r in per_kind(result.trials)],
        "audit": dataclasses.asdict(result.audit) if result.audit else None,
        "samples": result.samples,
        "violations": [dataclasses.asdict(v) for v in result.all_violations],
    }
    return json.dumps(data, indent=2)
