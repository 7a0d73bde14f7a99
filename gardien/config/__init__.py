"""The cluster config: one YAML file, parsed once into typed, validated, immutable objects."""

from gardien.config.loader import default_config_path, load_config, parse_config
from gardien.config.model import (
    ClusterConfig,
    DiskConfig,
    FenceConfig,
    GroupConfig,
    GroupServiceConfig,
    HookConfig,
    NetworkConfig,
    NodeConfig,
    ProbeSpec,
    ServiceConfig,
    VipConfig,
    VolumeConfig,
)

__all__ = [
    "ClusterConfig",
    "DiskConfig",
    "FenceConfig",
    "GroupConfig",
    "GroupServiceConfig",
    "HookConfig",
    "NetworkConfig",
    "NodeConfig",
    "ProbeSpec",
    "ServiceConfig",
    "VipConfig",
    "VolumeConfig",
    "default_config_path",
    "load_config",
    "parse_config",
]
