#!/usr/bin/env bash
# Checks configuration that doc/ ships for bridge operators, with the tools that read it:
# - doc/websocket-server.service with "systemd-analyze verify": syntax, every setting known to
#   this systemd, the dependencies (tor@default.service: Debian's tor package) and the
#   ExecStart program, here a fresh build put where the unit expects it in a copy;
# - the AppArmor rule of doc/BRIDGE.md, added to a copy of Debian's system_tor profile and
#   compiled by apparmor_parser (not loaded: that needs the kernel's AppArmor);
# - the torrc examples of doc/BRIDGE.md (layouts B and C) with "tor --verify-config".
# tests/install-deps.sh installs tor, systemd and apparmor. Any message is a failure; a tool
# that is missing is said so, and its check is not counted as done.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

if command -v systemd-analyze >/dev/null; then
	CGO_ENABLED=0 go build -o "$dir/websocket-server" ./server
	sed "s|/usr/local/bin/websocket-server|$dir/websocket-server|" doc/websocket-server.service >"$dir/websocket-server.service"
	out=$(systemd-analyze verify --man=no "$dir/websocket-server.service" 2>&1) || true
	if [ -n "$out" ]; then
		echo "$out"
		echo "verify-configs: doc/websocket-server.service FAILED"
		exit 1
	fi
	echo "verify-configs: doc/websocket-server.service verified ($(systemd-analyze --version | head -1))"
else
	echo "verify-configs: systemd-analyze is not installed: doc/websocket-server.service NOT verified"
fi

if command -v apparmor_parser >/dev/null && [ -f /etc/apparmor.d/system_tor ]; then
	rule=$(sed -n "s|^ *echo '\(.*\)' \| sudo tee -a /etc/apparmor.d/local/system_tor\$|\1|p" doc/BRIDGE.md)
	if [ -z "$rule" ]; then
		echo "verify-configs: no AppArmor rule found in doc/BRIDGE.md"
		exit 1
	fi
	mkdir "$dir/apparmor.d" && cp -a /etc/apparmor.d/. "$dir/apparmor.d/"
	echo "$rule" >>"$dir/apparmor.d/local/system_tor"
	if ! out=$(apparmor_parser -S --base "$dir/apparmor.d" "$dir/apparmor.d/system_tor" 2>&1 >/dev/null); then
		echo "$out"
		echo "verify-configs: the AppArmor rule of doc/BRIDGE.md FAILED in system_tor"
		exit 1
	fi
	echo "verify-configs: AppArmor rule \"$rule\" compiles in Debian's system_tor profile"
else
	echo "verify-configs: apparmor_parser or tor's system_tor profile missing: the AppArmor rule NOT checked"
fi

if command -v tor >/dev/null; then
	for section in "## torrc" "## Standalone under systemd"; do
		# The first fenced block after the section's heading.
		awk -v h="$section" '$0 == h || index($0, h " ") == 1 {f = 1} f && /^```$/ {if (p) exit; p = 1; next} p' \
			doc/BRIDGE.md >"$dir/torrc"
		if ! grep -q '^BridgeRelay 1$' "$dir/torrc"; then
			echo "verify-configs: no torrc found under \"$section\" in doc/BRIDGE.md"
			exit 1
		fi
		if ! out=$(tor --verify-config -f "$dir/torrc" --DataDirectory "$dir/tordata" 2>&1) ||
			! grep -q '^Configuration was valid$' <<<"$out"; then
			echo "$out"
			echo "verify-configs: the torrc under \"$section\" in doc/BRIDGE.md FAILED"
			exit 1
		fi
		echo "verify-configs: the torrc under \"$section\" in doc/BRIDGE.md is valid ($(tor --version | head -1))"
	done
else
	echo "verify-configs: tor is not installed: the torrc examples NOT checked"
fi
