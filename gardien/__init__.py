"""gardien: probes, alert rules and safe failover for classic active/passive clusters."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gardien")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
