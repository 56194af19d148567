#!/usr/bin/env bash
# Checks doc/websocket-server.service with "systemd-analyze verify": syntax, every setting
# known to this systemd, the dependencies (tor@default.service: Debian's tor package, which
# tests/install-deps.sh installs) and the ExecStart program, here a fresh build put where the
# unit expects it in a copy. Any message from systemd-analyze is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v systemd-analyze >/dev/null; then
	echo "verify-unit: systemd-analyze is not installed: doc/websocket-server.service NOT verified"
	exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
CGO_ENABLED=0 go build -o "$dir/websocket-server" ./server
sed "s|/usr/local/bin/websocket-server|$dir/websocket-server|" doc/websocket-server.service >"$dir/websocket-server.service"
out=$(systemd-analyze verify --man=no "$dir/websocket-server.service" 2>&1) || true
if [ -n "$out" ]; then
	echo "$out"
	echo "verify-unit: doc/websocket-server.service FAILED"
	exit 1
fi
echo "verify-unit: doc/websocket-server.service verified ($(systemd-analyze --version | head -1))"
