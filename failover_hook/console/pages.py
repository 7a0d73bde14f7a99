"""The console's pages: login, overview, group, decisions (the actions are in actions.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from failover_hook.console.cluster import overview, timelines
from failover_hook.console.context import Console
from failover_hook.console.sessions import COOKIE, LIFETIME, PREFIX

DECISIONS_SHOWN = 500
MOVES_DRAWN = 5
"""The newest moves of a group drawn as timelines on its page."""


def when(unix: float | None) -> str:
    """A time for people, on the clock of the hook serving the page."""
    if unix is None:
        return "-"
    return datetime.fromtimestamp(float(unix)).isoformat(sep=" ", timespec="seconds")


def _decisions(console: Console, group: str | None, status: str | None) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    missed = {}
    for node, found in console.reader.decisions().items():
        if isinstance(found, str):
            missed[node] = found
            continue
        rows += [{"node": node, **d} for d in found]
    statuses = sorted({str(d.get("status")) for d in rows})
    shown = [
        d
        for d in rows
        if (not group or d.get("group") == group) and (not status or d.get("status") == status)
    ]
    shown.sort(key=lambda d: float(d.get("time") or 0), reverse=True)
    return {"decisions": shown[:DECISIONS_SHOWN], "missed": missed, "statuses": statuses}


def register(bp: Blueprint, console: Console) -> None:
    hook = console.hook
    sessions = console.sessions
    bp.add_app_template_filter(when, "when")

    @bp.route("/login", methods=["GET", "POST"])
    def login() -> Response | tuple[str, int]:
        if request.method == "GET":
            return render_template("login.html", form=sessions.login_form), 200
        session = sessions.login(request.form.get("token", ""))
        if session is None:
            return render_template("login.html", form=sessions.login_form, wrong=True), 401
        response = redirect(url_for("console.overview_page"), code=303)
        response.set_cookie(
            COOKIE,
            session,
            max_age=int(LIFETIME),
            path=PREFIX,
            secure=sessions.secure,
            httponly=True,
            samesite="Strict",
        )
        return response

    @bp.post("/logout")
    def logout() -> Response:
        operator = console.operator()
        if operator.session:
            sessions.logout(operator.session)
        response = redirect(url_for("console.login"), code=303)
        response.delete_cookie(COOKIE, path=PREFIX, secure=sessions.secure, samesite="Strict")
        return response

    def overview_model() -> dict[str, Any]:
        alerts = console.reader.alerts()
        snap = console.reader.snapshot()
        return {
            "doc": overview(hook, snap),
            "nodes": list(snap.nodes),
            "alerts": alerts.result() if alerts is not None else None,
            "at": snap.at,
        }

    @bp.get("/")
    def overview_page() -> str:
        return render_template("overview.html", **overview_model())

    @bp.get("/fragments/overview")
    def overview_fragment() -> str:
        return render_template("_overview.html", **overview_model())

    def group_model(group: str) -> dict[str, Any]:
        console.known_group(group)
        snap = console.reader.snapshot(group)
        doc = overview(hook, snap)
        return {
            "group": group,
            "spec": hook.config.groups[group],
            "g": doc["groups"][group],
            "answers": snap.nodes,
            "entries": snap.entries(group),
            "snap": snap,
        }

    @bp.get("/groups/<group>")
    def group_page(group: str) -> str:
        model = group_model(group)
        pictures = timelines(model["snap"], group, console.reader.decisions(), MOVES_DRAWN)
        return render_template("group.html", pictures=pictures, **model)

    @bp.get("/fragments/groups/<group>")
    def group_fragment(group: str) -> str:
        return render_template("_group.html", **group_model(group))

    @bp.get("/decisions")
    def decisions() -> str:
        group = request.args.get("group") or None
        status = request.args.get("status") or None
        found = _decisions(console, group, status)
        return render_template(
            "decisions.html",
            group=group,
            status=status,
            groups=list(hook.config.groups),
            **found,
        )
