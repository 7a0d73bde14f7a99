"""The HTTP client of a hook's API, used hook-to-hook (as the mover's peer) and by the CLI.

A hook that does not answer raises :class:`PeerUnreachable`: its state is unknown, never assumed
down.  Answers that carry an outcome (409 "already in progress", 422 refused...) are returned as
that :class:`Outcome`; only transport failures and refused credentials raise.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Any

import requests

from failover_hook.freeze import FreezeState
from failover_hook.outcome import Outcome
from failover_hook.peers import PeerUnreachable
from failover_hook.resources.volume import start_budget
from gardien.config import ClusterConfig

log = logging.getLogger(__name__)


class HookAuthError(PeerUnreachable):
    """The hook refused our credentials (401): its state stays unknown to us."""


def read_token(config: ClusterConfig) -> str | None:
    file = config.hook.token_file
    return Path(file).read_text(encoding="utf-8").strip() if file else None


def group_budget(config: ClusterConfig, group: str) -> float:
    """Seconds a release or acquire of ``group`` may take: every step's own timeout (the volume's
    mount with the MMP wait after an unclean stop, :func:`volume.start_budget`), plus slack."""
    spec = config.groups[group]
    services = sum(s.start_timeout + s.stop_timeout for s in spec.services)
    volume = spec.volume.stop_timeout + start_budget(spec.volume) if spec.volume else 0.0
    return services + volume + 30.0


class HttpPeer:
    """One node's hook API."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        token: str | None,
        timeout: float,
        config: ClusterConfig,
        verify: bool | str = True,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._config = config
        self._session = requests.Session()
        self._verify = verify
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def for_node(cls, config: ClusterConfig, node: str, token: str | None) -> HttpPeer:
        """The hook of ``node``: https verified with ``hook.tls_ca_file`` when it is set."""
        address = config.nodes[node].address
        host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
        ca_file = config.hook.tls_ca_file
        return cls(
            node,
            f"{'https' if ca_file else 'http'}://{host}:{config.hook.port}",
            token=token,
            timeout=config.hook.request_timeout,
            config=config,
            verify=str(ca_file) if ca_file else True,
        )

    def _call(
        self, method: str, path: str, read_timeout: float | None = None, **kwargs: Any
    ) -> requests.Response:
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                timeout=(self.timeout, read_timeout or self.timeout),
                # per request: a session's own verify loses to REQUESTS_CA_BUNDLE in the
                # environment (requests merges it over the session's), the CA file must not
                verify=self._verify,
                **kwargs,
            )
        except requests.RequestException as exc:
            raise PeerUnreachable(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 401:
            raise HookAuthError(f"{self.name}: the hook refused our credentials (check the token)")
        return response

    def _json(self, response: requests.Response) -> dict[str, Any]:
        """The body of a 2xx answer; anything else means the peer's state is unknown."""
        try:
            if response.ok:
                data: dict[str, Any] = response.json()
                return data
        except ValueError:
            pass
        raise PeerUnreachable(
            f"{self.name}: unexpected answer {response.status_code}: {response.text[:200]}"
        )

    def _outcome(self, response: requests.Response) -> Outcome:
        try:
            return Outcome.from_json(response.json())
        except (ValueError, KeyError, TypeError) as exc:
            raise PeerUnreachable(
                f"{self.name}: unexpected answer {response.status_code}: {response.text[:200]}"
            ) from exc

    def status(
        self, group: str | None = None, resources: bool = True, until_failure: bool = False
    ) -> dict[str, Any]:
        """The hook's status document; with ``group``, only that group's part; without
        ``resources``, no check of the groups' resources; ``until_failure``: each group's
        resources checked up to the first that fails (see :meth:`ClusterStatus.status`)."""
        params = {"group": group} if group else {}
        if not resources:
            params["resources"] = "0"
        elif until_failure:
            params["resources"] = "until-failure"
        return self._json(self._call("GET", "/api/v1/status", params=params))

    def answers_status(self, timeout: float) -> bool:
        """Does the hook answer its status (without resource checks) within ``timeout``, on a
        connection of its own?  Not the session's: a kept-alive connection may be the one that
        stalled (:mod:`failover_hook.silence`)."""
        try:
            response = requests.get(
                f"{self.base_url}/api/v1/status",
                params={"resources": "0"},
                headers={**self._session.headers, "Connection": "close"},
                timeout=timeout,
                verify=self._verify,
            )
        except requests.RequestException:
            return False
        return response.ok

    def release(self, group: str, move: str | None = None) -> Outcome:
        return self._outcome(
            self._call(
                "POST",
                f"/api/v1/groups/{group}/release",
                group_budget(self._config, group),
                json={"move": move} if move else None,
            )
        )

    def acquire(self, group: str, force: bool = False, given_back_by: str | None = None) -> Outcome:
        """``force``: past the guard of the acquire (the operator's ``gardien acquire --force``);
        ``given_back_by``: this node, giving the group back (the guard does not ask it)."""
        body: dict[str, object] = {}
        if force:
            body["force"] = True
        if given_back_by is not None:
            body["given_back_by"] = given_back_by
        return self._outcome(
            self._call(
                "POST",
                f"/api/v1/groups/{group}/acquire",
                group_budget(self._config, group),
                json=body or None,
            )
        )

    def freeze(self, group: str | None, frozen: bool) -> Outcome:
        verb = "freeze" if frozen else "unfreeze"
        path = f"/api/v1/groups/{group}/{verb}" if group else f"/api/v1/{verb}"
        # the hook exchanges freeze state with its peers twice, each bounded by request_timeout
        return self._outcome(self._call("POST", path, 3 * self.timeout))

    def sync_freeze(self, state: FreezeState) -> FreezeState:
        """Give the hook our freeze records; it keeps the newer of each and answers its own."""
        answer = self._json(
            self._call("POST", "/api/v1/freeze/state", json=state.model_dump(mode="json"))
        )
        try:
            return FreezeState.model_validate(answer.get("freeze"))
        except ValueError as exc:
            raise PeerUnreachable(f"{self.name}: unexpected freeze state: {exc}") from exc

    def migrate(
        self,
        group: str,
        target: str,
        dry_run: bool = False,
        force: bool = False,
        operator: str | None = None,
    ) -> Outcome:
        """``operator``: who asked, journaled as the move's trigger (left out when None, so a
        hook that predates it is asked as before)."""
        budget = 2 * group_budget(self._config, group) + self._fence_budget()
        body: dict[str, object] = {"target": target, "dry_run": dry_run, "force": force}
        if operator is not None:
            body["operator"] = operator
        return self._outcome(
            self._call("POST", f"/api/v1/groups/{group}/migrate", budget, json=body)
        )

    def _fence_budget(self) -> float:
        return max((f.timeout for f in self._config.fencing.values()), default=0.0)

    def history(self, group: str | None = None) -> list[dict[str, Any]]:
        answer = self._json(
            self._call("GET", "/api/v1/history", params={"group": group} if group else {})
        )
        moves: list[dict[str, Any]] = answer["moves"]
        return moves

    def decisions(self) -> list[dict[str, Any]]:
        """The hook's last decisions (``GET /api/v1/decisions``), oldest first."""
        found: list[dict[str, Any]] = self._json(self._call("GET", "/api/v1/decisions"))[
            "decisions"
        ]
        return found

    def decide(self, payload: bytes, execute: bool = False) -> list[Outcome]:
        """Run a webhook payload through this hook's decision, synchronously (replay)."""
        longest = max((group_budget(self._config, g) for g in self._config.groups), default=0.0)
        response = self._call(
            "POST",
            "/api/v1/decide",
            2 * longest + self._fence_budget() if execute else None,
            data=payload,
            params={"execute": "1" if execute else "0"},
            headers={"Content-Type": "application/json"},
        )
        return [Outcome.from_json(o) for o in self._json(response)["outcomes"]]
