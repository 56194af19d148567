#!/usr/bin/env bash
# Installs the real peers the interop tests run against, from Debian packages
# and npm only. Idempotent; run as root (CI runs it before "make interop").
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
pkgs="tor haproxy nginx-light websockify chromium iproute2 util-linux systemd apparmor"
missing=$(for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing
fi
# Debian starts services on install; the tests run their own instances.
for s in tor nginx haproxy; do service "$s" stop >/dev/null 2>&1 || true; done
# node's "ws" package for the node peers, at the version tests/node/package-lock.json pins.
if ! command -v npm >/dev/null; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends nodejs npm
fi
(cd node && npm ci --no-audit --no-fund --loglevel=error)
