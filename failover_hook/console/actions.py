"""The operator's actions: migrate (the dry run and the gates' verdict first, then confirm),
freeze and unfreeze a group or the cluster, replay a pasted Alertmanager payload as a dry run.

Each runs where the CLI's does (a migrate on the target's hook, a freeze on this one, which
gives it to its peers, a replay on every node), shows its outcome and logs it with the operator.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, render_template, request

from failover_hook.console.cluster import outcome_or_problem
from failover_hook.console.context import Console
from failover_hook.outcome import Outcome
from failover_hook.peers import PeerUnreachable
from failover_hook.webhook import PayloadError, UnknownLabelsError, check_labels, parse_payload

log = logging.getLogger(__name__)


def register(bp: Blueprint, console: Console) -> None:
    hook = console.hook

    def target_of(group: str, given: str | None) -> str:
        console.known_group(group)
        if given not in hook.config.nodes:
            abort(400, "unknown target node")
        return str(given)

    def migrate(group: str, target: str, dry_run: bool) -> Outcome | str:
        """On the target's hook, as ``gardien migrate`` does (the move runs there)."""
        operator = console.operator().name
        if target == hook.node:
            return hook.dispatch.migrate(group, target, dry_run, operator=operator)
        peer = hook.cluster.peers[target]
        return outcome_or_problem(lambda: peer.migrate(group, target, dry_run, operator=operator))

    def done(action: str, outcomes: dict[str, Outcome | str], back: str) -> str:
        for node, outcome in outcomes.items():
            log.info("console: %s by %s: %s: %s", action, console.operator().name, node, outcome)
        return render_template("outcome.html", action=action, outcomes=outcomes, back=back)

    @bp.get("/groups/<group>/migrate")
    def migrate_preview(group: str) -> str:
        target = target_of(group, request.args.get("target"))
        preview = migrate(group, target, dry_run=True)
        confirmable = isinstance(preview, Outcome) and bool(preview.details.get("dry_run"))
        return render_template(
            "migrate.html", group=group, target=target, preview=preview, confirmable=confirmable
        )

    @bp.post("/groups/<group>/migrate")
    def migrate_confirmed(group: str) -> str:
        target = target_of(group, request.form.get("target"))
        outcome = migrate(group, target, dry_run=False)
        return done(f"migrate {group} to {target}", {target: outcome}, f"groups/{group}")

    @bp.post("/freeze")
    def freeze() -> str:
        group = request.form.get("group") or None
        verb = request.form.get("verb")
        if verb not in ("freeze", "unfreeze"):
            abort(400, "verb: freeze or unfreeze")
        if group is not None:
            console.known_group(group)
        outcome = hook.dispatch.set_frozen(group, verb == "freeze", console.operator().name)
        back = f"groups/{group}" if group else ""
        return done(f"{verb} {group or 'the cluster'}", {hook.node: outcome}, back)

    @bp.get("/replay")
    def replay_form() -> str:
        return render_template("replay.html", payload="", problem=None)

    @bp.post("/replay")
    def replay() -> tuple[str, int]:
        text = request.form.get("payload", "")
        body = text.encode()
        try:
            payload = parse_payload(body)
            check_labels(payload, hook.config)
        except (PayloadError, UnknownLabelsError) as exc:
            return render_template("replay.html", payload=text, problem=str(exc)), 422
        outcomes: dict[str, Outcome | str] = {}
        for node in hook.config.nodes:
            try:
                if node == hook.node:
                    found = hook.receiver.decide_now(payload, execute=False)
                else:
                    found = hook.cluster.peers[node].decide(body)
            except PeerUnreachable as exc:
                outcomes[node] = f"did not answer: {exc}"
                continue
            for i, outcome in enumerate(found):
                outcomes[f"{node}#{i + 1}"] = outcome
        return done("replay (dry run)", outcomes, "replay"), 200
