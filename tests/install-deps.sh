#!/usr/bin/env bash
# Installs the real peers the interop tests run against, from Debian packages
# and npm only. Idempotent; run as root (CI runs it before "make interop").
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
# wine64 and the mingw-w64 compilers run the Windows builds (interop_windows_test.go).
pkgs="tor haproxy nginx-light websockify chromium iproute2 util-linux systemd apparmor
	wine64 gcc-mingw-w64-x86-64-win32 gcc-mingw-w64-i686-win32"
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
# windows/386 runs in wine64's wow64 mode, which needs wine's 32-bit Windows DLLs: those of
# libwine:i386, unpacked into wine32/ here, not installed (installing wine32:i386 would pull
# 170 i386 packages). Its x86_64-unix link gives those DLLs the 64-bit Unix side of wine64.
if [ ! -d wine32/i386-windows ]; then
	if ! dpkg --print-foreign-architectures | grep -qx i386; then
		dpkg --add-architecture i386
		apt-get update -qq
	fi
	deb=$(mktemp -d)
	(cd "$deb" && apt-get download -qq -o APT::Sandbox::User=root libwine:i386 && dpkg-deb -x libwine_*.deb unpacked)
	rm -rf wine32 && mkdir wine32
	mv "$deb"/unpacked/usr/lib/i386-linux-gnu/wine/i386-windows wine32/
	ln -s /usr/lib/x86_64-linux-gnu/wine/x86_64-unix wine32/x86_64-unix
	rm -rf "$deb"
fi
