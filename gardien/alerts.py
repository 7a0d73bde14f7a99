"""The name of every alert the rules define, in one place.

The rules (:mod:`gardien.render.rules`), the Alertmanager routes, the hook that acts on the
failover alerts and the lab that waits for them all spell an alert through these constants, so a
renamed alert cannot leave one of them listening for a name that no longer fires.
"""

from __future__ import annotations

GROUP_FAILED = "GardienGroupFailed"
NODE_ISOLATED = "GardienNodeIsolated"
NODE_DOWN = "GardienNodeDown"
NETWORK_OUTAGE = "GardienNetworkOutage"
SPLIT_BRAIN = "GardienSplitBrain"
GROUP_DOWN = "GardienGroupDown"
VOLUME_NOT_WRITABLE = "GardienVolumeNotWritable"
VIP_MISSING = "GardienVipMissing"
NODE_SERVICE_FAILING = "GardienNodeServiceFailing"
HOOK_DOWN = "GardienHookDown"
EXPORTER_DOWN = "GardienExporterDown"
MOVE_FAILED = "GardienMoveFailed"
GROUP_FLAPPING = "GardienGroupFlapping"
GROUP_FROZEN_TOO_LONG = "GardienGroupFrozenTooLong"
CLUSTER_FROZEN_TOO_LONG = "GardienClusterFrozenTooLong"
CONFIG_RELOAD_FAILED = "GardienConfigReloadFailed"
COLLECTOR_FAILING = "GardienCollectorFailing"
DISK_FAILING = "GardienDiskFailing"
DISK_PREFAIL = "GardienDiskPrefail"
DISK_TEMPERATURE_HIGH = "GardienDiskTemperatureHigh"

FAILOVER_ALERTS = frozenset({GROUP_FAILED, NODE_ISOLATED, NODE_DOWN})
"""The alerts the hooks act on (labelled ``failover="true"`` by the rules); every other alert
reaching a hook is recorded as ignored."""
