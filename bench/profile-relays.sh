#!/bin/bash
# CPU profiles of each relay process of our chain under a bulk transfer, and its system calls:
#   bench/profile-relays.sh [OUTDIR [MiB [extra server/client flag: -base64]]]
# Builds both programs with symbols (the Makefile strips them), runs target, websocket-server and
# websocket-client on loopback, and for an upload then a download of MiB (default 1024) through
# `bench bulk` records `perf record -e cpu-clock -g` of each relay, then counts its system calls
# with `strace -c -f` during a second transfer. perftop.py prints each profile's top entries.
# Needs perf and strace (and the right to trace: root, or perf_event_paranoid <= 1).
set -euo pipefail
cd "$(dirname "$0")"
OUT=${1:-/tmp/relay-profiles}; SIZE=${2:-1024}; B64=${3:-}
mkdir -p "$OUT"
go build -o "$OUT/bench" .
(cd .. && CGO_ENABLED=0 go build -o "$OUT/websocket-client" ./client && CGO_ENABLED=0 go build -o "$OUT/websocket-server" ./server)
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
T=127.0.0.1:$(port); S=127.0.0.1:$(port); C=127.0.0.1:$(port)
SA=(); CA=()
if [ "$B64" = -base64 ]; then SA=(-base64=true); CA=(-protocol base64); fi
"$OUT/bench" target -listen "$T" & TP=$!
"$OUT/websocket-server" -listen "$S" -orport "$T" "${SA[@]}" 2>"$OUT/server.log" & SP=$!
"$OUT/websocket-client" -listen "$C" -url "ws://$S/" "${CA[@]}" 2>"$OUT/client.log" & CP=$!
trap 'kill $CP $SP $TP 2>/dev/null' EXIT
sleep 1
"$OUT/bench" bulk -entry "$C" -socks "$S" -size 32 -up >/dev/null # warm up
for dir in up down; do
	flag=""; [ $dir = up ] && flag=-up
	perf record -q -e cpu-clock -F 999 -g -p $SP -o "$OUT/server-$dir.data" 2>/dev/null & P1=$!
	perf record -q -e cpu-clock -F 999 -g -p $CP -o "$OUT/client-$dir.data" 2>/dev/null & P2=$!
	sleep 0.5
	echo "$dir: $("$OUT/bench" bulk -entry "$C" -socks "$S" -size "$SIZE" $flag)"
	kill -INT $P1 $P2; wait $P1 $P2 || true
done
for dir in up down; do
	flag=""; [ $dir = up ] && flag=-up
	strace -c -f -p $SP -o "$OUT/strace-server-$dir.txt" 2>/dev/null & Q1=$!
	strace -c -f -p $CP -o "$OUT/strace-client-$dir.txt" 2>/dev/null & Q2=$!
	sleep 0.5
	"$OUT/bench" bulk -entry "$C" -socks "$S" -size "$SIZE" $flag >/dev/null
	kill -INT $Q1 $Q2; wait $Q1 $Q2 || true
done
for f in client-up server-up client-down server-down; do
	echo "== $f ($SIZE MiB)"
	python3 perftop.py "$OUT/$f.data" "$OUT/websocket-${f%-*}" 8
	awk '$NF=="read"||$NF=="write"{printf "%s calls: %s  ", $NF, $4} END {print ""}' "$OUT/strace-$f.txt"
done
