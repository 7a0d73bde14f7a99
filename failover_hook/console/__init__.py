"""The web console at ``/ui/`` of every hook: the cluster at a glance, each group with its
resources, budget and every move as a timeline picture, the decisions log, and the operator's
actions (migrate after a dry run, freeze, replay a payload) with their outcome.

Server-rendered pages (Flask, Jinja2) with a small script of the package that refreshes the
overview in place; nothing is built or fetched from elsewhere.  Who may use it is decided by the
hook's authentication (:mod:`failover_hook.console.sessions`); docs/console.md shows it.
"""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from failover_hook.console import actions, pages
from failover_hook.console.cluster import ClusterReader
from failover_hook.console.context import Console
from failover_hook.console.sessions import REFUSAL_PAGE, UNAUTHENTICATED_PATHS, Sessions
from failover_hook.hook import Hook

__all__ = ["REFUSAL_PAGE", "UNAUTHENTICATED_PATHS", "Console", "Sessions", "blueprint"]

_OPEN_ENDPOINTS = frozenset({"console.login", "console.static"})


def blueprint(hook: Hook, sessions: Sessions) -> Blueprint:
    """The console's views, under ``/ui``; every one but the login form needs an operator,
    every POST but the login's a CSRF token."""
    bp = Blueprint(
        "console",
        __name__,
        url_prefix="/ui",
        static_folder="static",
        template_folder="templates",
    )
    console = Console(hook, sessions, ClusterReader(hook))

    @bp.before_request
    def who() -> None:
        if request.endpoint in _OPEN_ENDPOINTS:
            return
        operator = sessions.operator(request)
        if operator is None:
            abort(401)
        if request.method == "POST" and not sessions.csrf_ok(operator, request.form.get("csrf")):
            abort(403, "missing or wrong CSRF token: reload the page")
        g.operator = operator

    @bp.after_request
    def headers(response: Response) -> Response:
        # the pages load nothing but this hook's own files
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.errorhandler(HTTPException)
    def error(exc: HTTPException) -> tuple[str, int]:
        """A page, not the API's JSON: what went wrong, and the way back."""
        code = exc.code or 500
        return render_template("error.html", code=code, message=exc.description), code

    @bp.context_processor
    def page_context() -> dict[str, object]:
        operator = g.get("operator")
        return {
            "csrf": sessions.csrf(operator) if operator else "",
            "operator": operator,
            "node": hook.node,
            "cluster_name": hook.config.cluster,
        }

    pages.register(bp, console)
    actions.register(bp, console)
    return bp
