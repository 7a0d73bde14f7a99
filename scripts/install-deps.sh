#!/usr/bin/env bash
# Install what gardien, its tests and its lab need on Debian 12 (root). Idempotent.
# --peers: also keepalived, Pacemaker and Corosync, for the side-by-side benchmarks only
# (benchmarks/peers/, docs/benchmarks.md); CI does not need them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's postinsts must not start the packaged daemons: the lab and tests run their own.
if [ ! -x /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
fi

PACKAGES=(
  prometheus prometheus-alertmanager prometheus-blackbox-exporter
  mariadb-server mariadb-client apache2 samba smbclient winbind tomcat10
  samba-ad-dc samba-dsdb-modules samba-ad-provision slapd ldap-utils
  smartmontools arping iputils-ping psmisc iproute2 e2fsprogs util-linux procps curl nftables
  chromium chromium-driver
)
if [ "${1:-}" = "--peers" ]; then
  # kmod: ocf:heartbeat:Filesystem runs modprobe; tini: the subreaper pacemakerd runs under.
  PACKAGES+=(keepalived pacemaker pacemaker-cli-utils corosync resource-agents kmod tini)
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's own python3 comes without pip and marks its environment as managed by apt (PEP 668):
# gardien's Python dependencies then go to /usr/local, beside apt's, as pip does for root there.
if ! python3 -m pip --version >/dev/null 2>&1; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-pip
fi
PIP_FLAGS=(-q --disable-pip-version-check --root-user-action=ignore)
stdlib=$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')
if [ -f "$stdlib/EXTERNALLY-MANAGED" ]; then
  PIP_FLAGS+=(--break-system-packages)
fi
python3 -m pip install "${PIP_FLAGS[@]}" -e '.[test]'

# Grafana 11.6's dashboard types (npm) and the generator that turns them into the JSON Schema
# tests/render/test_dashboards.py validates the dashboards against; git-ignored folder.
if ! command -v npm >/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm
fi
GRAFANA_SCHEMA_DIR=.cache/grafana-schema
NPM_PACKAGES=(@grafana/schema@11.6.0 ts-json-schema-generator@2.4.0)
for spec in "${NPM_PACKAGES[@]}"; do
  manifest="$GRAFANA_SCHEMA_DIR/node_modules/${spec%@*}/package.json"
  if ! grep -q "\"version\": \"${spec##*@}\"" "$manifest" 2>/dev/null; then
    npm install --prefix "$GRAFANA_SCHEMA_DIR" --no-audit --no-fund --save-exact --loglevel=error "${NPM_PACKAGES[@]}"
    break
  fi
done
