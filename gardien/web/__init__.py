"""HTTP serving shared by the exporter and the hook, in three jobs: reading the web config file
(:mod:`gardien.web.config`), authenticating requests (:mod:`gardien.web.auth`) and serving
(:mod:`gardien.web.server`: an event-loop front end, :mod:`gardien.web.frontend`, within the limits
of :mod:`gardien.web.limits`, that runs the WSGI app in a pool of threads,
:mod:`gardien.web.wsgi_call`).  The names the daemons use are importable from here."""

from gardien.web.auth import (
    DEFAULT_UNAUTHENTICATED_PATHS,
    Authenticator,
    AuthMiddleware,
    BasicAuth,
    BearerToken,
)
from gardien.web.config import TlsConfig, WebConfig, load_web_config
from gardien.web.server import (
    DEFAULT_THREADS,
    LISTEN_BACKLOG,
    HeadersMiddleware,
    WebServer,
    node_listen_address,
    parse_listen_address,
)

__all__ = [
    "DEFAULT_THREADS",
    "DEFAULT_UNAUTHENTICATED_PATHS",
    "LISTEN_BACKLOG",
    "AuthMiddleware",
    "Authenticator",
    "BasicAuth",
    "BearerToken",
    "HeadersMiddleware",
    "TlsConfig",
    "WebConfig",
    "WebServer",
    "load_web_config",
    "node_listen_address",
    "parse_listen_address",
]
