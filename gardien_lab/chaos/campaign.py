"""The campaign: K faults drawn from one seed, each injected, held, healed, and the cluster audited.

One trial: wait until every group may still move (its ``max_moves`` per ``window`` not spent: a
fault that could only be refused by anti-flap would prove nothing), draw the kind, the moment and
the hold time, inject, hold, heal, power on a node the fault left off, then wait until every group
is healthy on exactly one node (:data:`RECOVERY_BOUND`), power on a node fenced since the heal, and
wait until the cluster is quiet again.  Beside
the trials, :class:`~gardien_lab.chaos.watch.Watch` samples the kernel's facts and
:class:`~gardien_lab.chaos.writers.Writers` write through the VIPs; the invariants are checked
against those, not against what gardien says (its journals are read only to find a move that
never finished).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gardien import polling
from gardien.config.loader import load_config
from gardien.types import parse_duration
from gardien_lab import clusterconfig, hookapi, lifecycle, scenario, topology
from gardien_lab.chaos.fault import HOLD, LONG_HOLD, Context, Fault, Kind
from gardien_lab.chaos.kinds import KINDS, TWO_AT_ONCE
from gardien_lab.chaos.watch import Sample, Watch
from gardien_lab.chaos.writers import Audit, Writers
from gardien_lab.netns import LabError
from gardien_lab.topology import NODES, Lab

log = logging.getLogger(__name__)

RECOVERY_BOUND = 60.0
"""Seconds after a fault heals within which every group must be healthy on exactly one node."""
QUIET_BOUND = 60.0
"""Seconds a trial waits, once recovered, for the failover alerts to clear."""
QUIET_MIN = 6.0
"""Seconds a recovered cluster must stay healthy before the next fault: a fault the client does
not see at once is seen by gardien within ``for`` (2 s) plus a scrape and an evaluation (1 s
each), and the move it causes belongs to this trial, not to the next one."""
FENCED_AFTER_HEAL = "a node fenced after the heal: powered on"
MOVE_WINDOW = "60s"
"""The lab's anti-flap ``window`` during a campaign (``max_moves`` stays 3): with the lab's 10 min,
the campaign would mostly wait for the groups' move budgets."""
DELAY = (0.0, 2.0)
"""Wait before the injection, drawn uniformly: faults land at any moment of the hooks' cycles."""
POWER_ON_ATTEMPTS = 3
SECOND_FAULT_DELAY = (0.0, 3.0)
"""``two-at-once``: the second fault lands this long after the first (often within its move)."""


@dataclass(frozen=True)
class Violation:
    invariant: str
    """``double-volume``, ``double-vip``, ``not-recovered``, ``not-quiet``, ``moved``,
    ``flapping``, ``unfinished-move``, ``lost-write``, ``unaudited``, ``no-outcome``,
    ``aborted`` (the lab failed under the campaign: the trials after it were not run)."""
    time: float
    detail: str
    trial: int | None = None
    samples: tuple[str, ...] = ()
    """The checker's samples around it (time, each node's mounts and VIPs)."""


@dataclass
class Trial:
    index: int
    kind: str
    faults: list[str] = field(default_factory=list)
    injected_at: float = 0.0
    healed_at: float = 0.0
    recovered_at: float | None = None
    moves: int = 0
    notes: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    @property
    def recovery(self) -> float | None:
        """Seconds from the heal to every group healthy on one node (what the bound bounds)."""
        return None if self.recovered_at is None else self.recovered_at - self.healed_at

    @property
    def outage(self) -> float | None:
        """Seconds from the fault to every group healthy on one node."""
        return None if self.recovered_at is None else self.recovered_at - self.injected_at


@dataclass
class Result:
    seed: int
    lab: str
    settings: dict[str, str]
    trials: list[Trial] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    audit: Audit | None = None
    samples: int = 0

    @property
    def all_violations(self) -> list[Violation]:
        return [v for t in self.trials for v in t.violations] + self.violations


def _told(samples: Sequence[Sample], since: float) -> tuple[str, ...]:
    return tuple(f"{s.time - since:+8.2f} s  {s.brief()}" for s in samples)


def healthy_placement(lab: Lab) -> dict[str, str] | None:
    """Each group's node when every group runs on exactly one node, answers on its VIP from the
    client, and no hook has a move under way; else None."""
    where = scenario.placement(lab)
    if any(len(nodes) != 1 for nodes in where.values()):
        return None
    if not all(scenario.answers(lab, g) for g in where) or scenario.moving(lab):
        return None
    return {g: nodes[0] for g, nodes in where.items()}


def _reload_hooks(lab: Lab) -> None:
    for node in NODES:
        pid = topology.running(lab, node, "hook")
        if pid is not None:
            os.kill(pid, signal.SIGHUP)
    time.sleep(2)  # a reload takes the claim of every group; nothing is under way here


def _unfinished(lab: Lab) -> list[str]:
    return [
        f"{node}: {m.kind} #{m.id} of {m.group} started {time.time() - m.started:.0f} s ago"
        for node in NODES
        for m in hookapi.history(lab, node)
        if m.finished is None
    ]


class Campaign:
    def __init__(self, lab: Lab, seed: int, faults: int, kinds: Sequence[str]) -> None:
        self.lab = dataclasses.replace(lab, move_window=MOVE_WINDOW)
        self.default_lab = lab
        self.rng = random.Random(seed)
        self.faults = faults
        self.kinds = list(kinds)
        config = load_config(clusterconfig.config_path(lab)).hook
        self.max_moves = config.max_moves
        self.settle = config.settle
        self.window = parse_duration(MOVE_WINDOW)
        self.result = Result(
            seed,
            lab.name,
            {
                "recovery_bound": f"{RECOVERY_BOUND:g}s",
                "max_moves": str(self.max_moves),
                "window": MOVE_WINDOW,
                "settle": f"{self.settle:g}s",
                "cooldown": str(clusterconfig.HOOK_SETTINGS["cooldown"]),
                "group_failed_for": lab.group_failed_for,
                "hold": f"{HOLD[0]:g}-{HOLD[1]:g}s, node and cluster link faults "
                f"{LONG_HOLD[0]:g}-{LONG_HOLD[1]:g}s",
            },
        )
        trial_bound = RECOVERY_BOUND + QUIET_BOUND + LONG_HOLD[1] + self.window
        self.budget = self.faults * trial_bound + 600
        """Seconds the whole campaign may take: the checker's and the writers' limit."""
        self.watch = Watch(self.lab, self.budget)
        """The checker, sampling from before the first trial to after the last."""

    # ---- the run ---------------------------------------------------------------------------

    def run(self, progress: Callable[[Trial], None] = lambda _t: None) -> Result:
        clusterconfig.write_config(self.lab)
        _reload_hooks(self.lab)
        try:
            scenario.restore(self.lab)
            writers = Writers(self.lab, self.lab.dir / "chaos", self.budget)
            with self.watch as watch:
                writers.start()
                try:
                    for index in range(1, self.faults + 1):
                        trial = self.trial(index)
                        self.result.trials.append(trial)
                        progress(trial)
                except LabError as exc:  # the lab itself failed: report what was found so far
                    self._violation(None, "aborted", f"the campaign stopped at a lab error: {exc}")
                finally:
                    writers.stop()
                self.finish(writers)
                self.result.samples = watch.samples
        finally:
            clusterconfig.write_config(self.default_lab)
            _reload_hooks(self.default_lab)
        return self.result

    def _wait_for_budgets(self) -> None:
        """Until no group has spent ``max_moves - 1`` of its moves in the last window."""

        def spent() -> bool:
            now = time.time()
            return any(
                len([t for t, _ in self.watch.arrivals(g) if now - t < self.window])
                >= self.max_moves - 1
                for g in scenario.home(self.lab)
            )

        polling.wait_until(lambda: not spent(), self.window + 5, interval=1.0)

    def _inject(self, kind_name: str, trial: Trial) -> list[Fault]:
        placement = healthy_placement(self.lab) or scenario.home(self.lab)
        ctx = Context(self.lab, self.rng, placement)
        if kind_name != TWO_AT_ONCE:
            fault = KINDS[kind_name].inject(ctx, None)
            return [fault] if fault else []
        pair = [k for k in KINDS.values() if k.on_one_node]
        first, second = self.rng.sample(pair, 2)
        node = self.rng.choice(NODES)
        other = next(n for n in NODES if n != node)
        delay = self.rng.uniform(*SECOND_FAULT_DELAY)
        injected = [f for f in [first.inject(ctx, node)] if f]
        time.sleep(delay)
        injected += [f for f in [second.inject(ctx, other)] if f]
        trial.notes.append(f"second fault {delay:.2f} s after the first")
        return injected

    def trial(self, index: int) -> Trial:
        self._wait_for_budgets()
        kind_name = self.rng.choice(self.kinds)
        hold_range = KINDS[kind_name].hold if kind_name in KINDS else LONG_HOLD
        delay, hold = self.rng.uniform(*DELAY), self.rng.uniform(*hold_range)
        trial = Trial(index, kind_name)
        time.sleep(delay)
        trial.injected_at = time.time()
        injected = self._inject(kind_name, trial)
        trial.faults = [f.description for f in injected]
        log.info("trial %d: %s", index, "; ".join(trial.faults) or "nothing to act on")
        if any(KINDS[f.kind].held for f in injected):
            time.sleep(hold)
        for fault in reversed(injected):
            fault.heal()
        if any(self.lab.holder(n) is None for n in NODES):
            self._power_on(trial)
        trial.healed_at = time.time()
        placed = polling.wait_for(lambda: healthy_placement(self.lab), RECOVERY_BOUND, 1.0)
        if placed is None:
            self._violation(
                trial,
                "not-recovered",
                f"not every group healthy on one node {RECOVERY_BOUND:g} s after the heal: "
                + scenario.explain(self.lab, trial.injected_at, *scenario.home(self.lab)),
            )
        else:
            trial.recovered_at = time.time()
        self._quiet(trial)
        self._check(trial, [KINDS[k] for k in (kind_name,) if k in KINDS])
        if trial.recovered_at is None:
            self._restore(trial)
        return trial

    def _restore(self, trial: Trial) -> None:
        """After a trial the cluster did not recover from (its violation recorded): what an
        operator would do, every group moved home by hand (forced) and the hooks restarted, so
        that the next trial starts from a healthy cluster instead of failing on its wreck."""
        trial.notes.append("not recovered: the lab restored by hand (gardien migrate --force)")
        scenario.restore(self.lab)

    def _power_on(self, trial: Trial) -> None:
        """Power on the nodes that are off.  A node powered on while its peer is fencing it is
        fenced again (as a real fence device would): then the peer's moves are let finish and
        the node powered on again."""
        for attempt in range(1, POWER_ON_ATTEMPTS + 1):
            off = [n for n in NODES if self.lab.holder(n) is None]
            if not off:
                return
            trial.notes.append(f"{', '.join(off)} off: powered on (attempt {attempt})")
            try:
                lifecycle.power_on(self.lab)
            except LabError as exc:
                trial.notes.append(f"power on: {exc}")
                polling.wait_until(lambda: not scenario.moving(self.lab), RECOVERY_BOUND, 1.0)
        if any(self.lab.holder(n) is None for n in NODES):
            raise LabError(f"a node stays off after {POWER_ON_ATTEMPTS} power-ons")

    def _power_on_fenced(self, trial: Trial) -> None:
        """Power on a node fenced since the heal: a fence decided while the fault held (a frozen
        node thawed just before its peer fenced it) can come after the heal, and the node is
        then off, as a real one would be, until someone powers it on."""
        if any(self.lab.holder(n) is None for n in NODES):
            if FENCED_AFTER_HEAL not in trial.notes:
                trial.notes.append(FENCED_AFTER_HEAL)
            self._power_on(trial)

    def _quiet(self, trial: Trial) -> None:
        if trial.recovered_at is not None:
            time.sleep(max(0.0, trial.recovered_at + QUIET_MIN - time.time()))
            self._power_on_fenced(trial)
            if polling.wait_for(lambda: healthy_placement(self.lab), RECOVERY_BOUND, 1.0) is None:
                self._violation(
                    trial,
                    "not-recovered",
                    f"healthy after the heal, then not every group healthy on one node for "
                    f"{RECOVERY_BOUND:g} s: "
                    + scenario.explain(self.lab, trial.injected_at, *scenario.home(self.lab)),
                )

        def quiet() -> bool:
            self._power_on_fenced(trial)
            return not any(scenario.firing(self.lab, a) for a in scenario.ALERTS_CLEAR_AT_HOME)

        cleared = polling.wait_until(quiet, QUIET_BOUND, interval=1.0)
        if not cleared:
            still = [a for a in scenario.ALERTS_CLEAR_AT_HOME if scenario.firing(self.lab, a)]
            self._violation(
                trial,
                "not-quiet",
                f"{', '.join(still)} still firing {QUIET_BOUND:g} s after every group recovered",
            )
        last_arrival = max(
            (t for g in scenario.home(self.lab) for t, _ in self.watch.arrivals(g)),
            default=0.0,
        )
        time.sleep(max(0.0, last_arrival + self.settle + 1 - time.time()))

    def _check(self, trial: Trial, kinds: list[Kind]) -> None:
        since = trial.injected_at
        moved = [
            (g, t, n)
            for g in scenario.home(self.lab)
            for t, n in self.watch.arrivals(g)
            if t >= since
        ]
        trial.moves = len(moved)
        for kind in kinds:
            if kind.moves_at_most is not None and trial.moves > kind.moves_at_most:
                self._violation(
                    trial,
                    "moved",
                    f"{kind.name} may move at most {kind.moves_at_most} group(s); moved: "
                    + ", ".join(f"{g} to {n}" for g, _, n in moved),
                    moved[0][1],
                )
        for double in [d for d in self.watch.doubles if d.time >= since]:
            self._violation(
                trial,
                f"double-{double.what.lower()}",
                f"{double.group}'s {double.what} on two nodes: {double.sample.brief()}",
                double.time,
            )
        unfinished = _unfinished(self.lab)
        if unfinished:
            self._violation(trial, "unfinished-move", "; ".join(unfinished))

    def _violation(
        self, trial: Trial | None, invariant: str, detail: str, when: float | None = None
    ) -> None:
        when = time.time() if when is None else when
        samples = _told(self.watch.around(when), when)
        violation = Violation(invariant, when, detail, trial.index if trial else None, samples)
        log.warning("violation %s: %s", invariant, detail)
        (trial.violations if trial else self.result.violations).append(violation)

    # ---- the end ---------------------------------------------------------------------------

    def finish(self, writers: Writers) -> None:
        placed = polling.wait_for(lambda: healthy_placement(self.lab), RECOVERY_BOUND, 1.0) or {}
        audit = writers.audit(placed)
        self.result.audit = audit
        for target, missing in audit.missing.items():
            if missing:
                self._violation(
                    None,
                    "lost-write",
                    f"{target}: {len(missing)} acknowledged write(s) missing, e.g. {missing[:5]}",
                )
        for problem in audit.problems:
            self._violation(None, "unaudited", problem)
        for group in scenario.home(self.lab):
            times = [t for t, _ in self.watch.arrivals(group)]
            for i, start in enumerate(times):
                within = [t for t in times[i:] if t - start < self.window]
                if len(within) > self.max_moves:
                    self._violation(
                        None,
                        "flapping",
                        f"{group} moved {len(within)} times within {MOVE_WINDOW} "
                        f"(max_moves {self.max_moves})",
                        start,
                    )
                    break
        for node in NODES:
            for decision in hookapi.decisions(self.lab, node):
                if not decision.outcome.message:
                    self._violation(None, "no-outcome", f"{node}: a decision without an outcome")
