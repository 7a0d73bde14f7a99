"""The hook's HTTP API (Flask), a thin layer over the parts of :class:`failover_hook.hook.Hook`.

Authentication (bearer token, exporter-toolkit basic auth, the web console's sessions) and TLS
are applied around this app by :class:`gardien.web.WebServer`; the console is a blueprint of it
under ``/ui/`` (:mod:`failover_hook.console`).  Every answer about an action is an
:class:`Outcome` as JSON; 409 means "already in progress".
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from flask import Flask, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from werkzeug.exceptions import HTTPException

from failover_hook import console
from failover_hook.client import read_token
from failover_hook.freeze import FreezeState
from failover_hook.hook import Hook
from failover_hook.outcome import Outcome, Status
from failover_hook.webhook import (
    MAX_BODY_BYTES,
    PayloadError,
    UnknownLabelsError,
    check_labels,
    parse_payload,
)
from gardien.web.exposition import answer

log = logging.getLogger(__name__)


def _metrics(hook: Hook) -> Response:
    """The hook's metrics as the exporter answers its own (:func:`gardien.web.exposition.answer`:
    the format the scraper asked for, ``name[]``, gzip)."""
    body, headers = answer(
        hook.metrics.registry.collect(),
        request.headers.get("Accept"),
        request.headers.get("Accept-Encoding"),
        request.query_string.decode("latin-1"),
    )
    return Response(body, headers=headers)


class MigrateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    target: str
    dry_run: bool = False
    force: bool = False
    operator: str | None = Field(None, pattern=r"^[^\x00-\x1f\x7f]{1,100}$")
    """Who asked (the web console's operator), journaled as the move's trigger."""


class FreezeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    operator: str | None = Field(None, pattern=r"^[^\x00-\x1f\x7f]{1,100}$")
    """Who asked (the web console's operator), journaled as the freeze's trigger."""


class ReleaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    move: str | None = Field(None, pattern=r"^[^#\s]{1,100}#\d{1,18}$")
    """The key of the other node's move this release is a step of (``node2#7``), journaled."""


class AcquireRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    force: bool = False
    """The operator's override: acquire without asking the other nodes (journaled as forced)."""
    given_back_by: str | None = None
    """The node giving the group back (a move's undo), which need not be asked."""


class StatusQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    group: str | None = None
    resources: Literal["0", "1", "until-failure"] = "1"
    """``0``: leave out the check of each group's resources (what a deciding peer asks);
    ``until-failure``: check each group's resources in order up to the first that fails (what a
    peer confirming a failure asks, failover_hook/confirm.py)."""


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def _answer(outcome: Outcome) -> tuple[Response, int]:
    return jsonify(outcome.to_json()), 409 if outcome.status == Status.IN_PROGRESS else 200


def _error(code: int, message: str) -> tuple[Response, int]:
    return jsonify({"status": "error", "message": message}), code


def _status(hook: Hook, args: dict[str, str]) -> tuple[Response, int]:
    try:
        query = StatusQuery.model_validate(args)
    except ValidationError as exc:
        return _error(400, f"invalid status query: {_first_error(exc)}")
    if query.group is not None and query.group not in hook.config.groups:
        return _error(404, "unknown group")
    status = hook.cluster.status(
        query.group,
        resources=query.resources != "0",
        until_failure=query.resources == "until-failure",
    )
    return jsonify(status.model_dump(mode="json")), 200


def _freeze(hook: Hook, group: str | None, frozen: bool, body: bytes) -> tuple[Response, int]:
    try:
        asked = FreezeRequest.model_validate_json(body or b"{}")
    except ValidationError as exc:
        return _error(400, f"invalid freeze request: {_first_error(exc)}")
    return _answer(hook.dispatch.set_frozen(group, frozen, asked.operator))


def _freeze_state(hook: Hook, given: bytes | None) -> tuple[Response, int]:
    """This node's freeze records; ``given``: a peer's (at its start, or giving an operator's
    decision), of which the newer are kept first, so the answer is the state after the merge."""
    store = hook.cluster.freeze
    if given is not None:
        try:
            theirs = FreezeState.model_validate_json(given or b"{}")
        except ValidationError as exc:
            return _error(400, f"invalid freeze state: {_first_error(exc)}")
        if store.merge(theirs):
            log.info("freeze state learned from a peer: %s", store.state())
    return jsonify({"node": hook.node, "freeze": store.state().model_dump(mode="json")}), 200


def _reloaded(outcome: Outcome) -> tuple[Response, int]:
    """``/-/reload``: the config file read again (as SIGHUP does); 500, as the exporter answers,
    when refused and the config in force stays (invalid, drops a group held here, needs a
    restart), 409 when a move runs."""
    if outcome.ok or outcome.status is Status.IN_PROGRESS:
        return _answer(outcome)
    return jsonify(outcome.to_json()), 500


def _acquire(hook: Hook, group: str, data: bytes) -> tuple[Response, int]:
    try:
        body = AcquireRequest.model_validate_json(data or b"{}")
    except ValidationError as exc:
        return _error(400, f"invalid acquire request: {_first_error(exc)}")
    if body.given_back_by is not None and body.given_back_by not in hook.config.nodes:
        return _error(400, f"invalid acquire request: unknown node {body.given_back_by!r}")
    return _answer(hook.dispatch.acquire(group, body.force, body.given_back_by))


def create_app(hook: Hook, sessions: console.Sessions | None = None) -> Flask:
    """The hook's API and its console; ``sessions``: the console's, which the daemon's
    authentication also asks (default: sessions of the config's token)."""
    app = _api(hook)
    sessions = sessions or console.Sessions(read_token(hook.config))
    app.register_blueprint(console.blueprint(hook, sessions))
    return app


def _api(hook: Hook) -> Flask:
    app = Flask("gardien-hook")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return _error(exc.code or 500, exc.description or exc.name)

    def known_group(group: str) -> tuple[Response, int] | None:
        return None if group in hook.config.groups else _error(404, "unknown group")

    @app.get("/-/healthy")
    def healthy() -> str:
        return "OK\n"

    @app.route("/-/reload", methods=["POST", "PUT"])
    def reload() -> tuple[Response, int]:
        return _reloaded(hook.reload())

    @app.get("/metrics")
    def metrics() -> Response:
        return _metrics(hook)

    @app.get("/api/v1/status")
    def status() -> tuple[Response, int]:
        return _status(hook, request.args.to_dict())

    @app.post("/api/v1/groups/<group>/release")
    def release(group: str) -> tuple[Response, int]:
        try:
            body = ReleaseRequest.model_validate_json(request.get_data() or b"{}")
        except ValidationError as exc:
            return _error(400, f"invalid release request: {_first_error(exc)}")
        return known_group(group) or _answer(hook.dispatch.release(group, body.move))

    @app.post("/api/v1/groups/<group>/acquire")
    def acquire(group: str) -> tuple[Response, int]:
        return known_group(group) or _acquire(hook, group, request.get_data())

    @app.post("/api/v1/groups/<group>/<any(freeze, unfreeze):verb>")
    def freeze_group(group: str, verb: str) -> tuple[Response, int]:
        return known_group(group) or _freeze(hook, group, verb == "freeze", request.get_data())

    @app.post("/api/v1/<any(freeze, unfreeze):verb>")
    def freeze_cluster(verb: str) -> tuple[Response, int]:
        return _freeze(hook, None, verb == "freeze", request.get_data())

    @app.route("/api/v1/freeze/state", methods=["GET", "POST"])
    def freeze_state() -> tuple[Response, int]:
        return _freeze_state(hook, request.get_data() if request.method == "POST" else None)

    @app.post("/api/v1/groups/<group>/migrate")
    def migrate(group: str) -> tuple[Response, int]:
        unknown = known_group(group)
        if unknown:
            return unknown
        try:
            body = MigrateRequest.model_validate_json(request.get_data() or b"{}")
        except ValidationError as exc:
            return _error(400, f"invalid migrate request: {_first_error(exc)}")
        if body.target not in hook.config.nodes:
            return _error(422, "unknown target node")
        return _answer(
            hook.dispatch.migrate(group, body.target, body.dry_run, body.force, body.operator)
        )

    @app.get("/api/v1/history")
    def history() -> tuple[Response, int]:
        group = request.args.get("group")
        if group is not None and group not in hook.config.groups:
            return _error(404, "unknown group")
        return jsonify({"moves": hook.cluster.history(group)}), 200

    @app.get("/api/v1/decisions")
    def decisions() -> Response:
        return jsonify({"decisions": hook.receiver.decisions()})

    def payload_or_error() -> Any:
        try:
            payload = parse_payload(request.get_data())
            check_labels(payload, hook.config)
        except PayloadError as exc:
            return _error(400, str(exc))
        except UnknownLabelsError as exc:
            return _error(422, str(exc))
        return payload

    @app.post("/api/v1/alerts")
    def alerts() -> tuple[Response, int]:
        try:
            payload = payload_or_error()
            if isinstance(payload, tuple):
                answer = payload
            else:
                outcomes = hook.receiver.receive(payload)
                answer = jsonify({"outcomes": [o.to_json() for o in outcomes]}), 200
        except HTTPException as exc:
            answer = http_error(exc)
        hook.metrics.webhook_requests.labels(str(answer[1])).inc()
        return answer

    @app.post("/api/v1/decide")
    def decide() -> tuple[Response, int]:
        payload = payload_or_error()
        if isinstance(payload, tuple):
            return payload
        execute = request.args.get("execute") == "1"
        outcomes = hook.receiver.decide_now(payload, execute=execute)
        return jsonify({"node": hook.node, "outcomes": [o.to_json() for o in outcomes]}), 200

    return app
