#!/bin/bash
# Paired A/B of our relays' CPU per GiB between builds, side by side on one target:
#   bench/ab.sh SIZE_MiB ROUNDS up|down NAME=BINDIR NAME=BINDIR ...
# Each BINDIR holds websocket-client and websocket-server; each round moves SIZE MiB one way
# through each build's chain in turn (`bench bulk`) and prints its client's and server's CPU
# (from /proc/PID/task/*/schedstat) per GiB. Builds can be mixed: a BINDIR may hold one
# build's client and another's server.
set -euo pipefail
cd "$(dirname "$0")"
SIZE=$1; ROUNDS=$2; DIR=$3; shift 3
B=$(mktemp -d)/bench
go build -o "$B" .
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
T=127.0.0.1:$(port)
"$B" target -listen "$T" & PIDS=($!)
declare -A SP CP C S
NAMES=()
for nb in "$@"; do
	n=${nb%%=*} d=${nb#*=}
	NAMES+=("$n"); S[$n]=127.0.0.1:$(port); C[$n]=127.0.0.1:$(port)
	"$d/websocket-server" -listen "${S[$n]}" -orport "$T" 2>/dev/null & SP[$n]=$!
	"$d/websocket-client" -listen "${C[$n]}" -url "ws://${S[$n]}/" 2>/dev/null & CP[$n]=$!
	PIDS+=("${SP[$n]}" "${CP[$n]}")
done
trap 'kill "${PIDS[@]}" 2>/dev/null' EXIT
sleep 1
cpu() { awk '{s+=$1} END {print s/1e9}' /proc/"$1"/task/*/schedstat; }
flag=""; [ "$DIR" = up ] && flag=-up
for r in $(seq "$ROUNDS"); do
	for n in "${NAMES[@]}"; do
		c0=$(cpu "${CP[$n]}"); s0=$(cpu "${SP[$n]}")
		out=$("$B" bulk -entry "${C[$n]}" -socks "${S[$n]}" -size "$SIZE" $flag)
		c1=$(cpu "${CP[$n]}"); s1=$(cpu "${SP[$n]}")
		python3 -c "g=$SIZE/1024; print('$n', '$out', 'client %.2f server %.2f both %.2f s/GiB' % (($c1-$c0)/g, ($s1-$s0)/g, ($c1-$c0+$s1-$s0)/g))"
	done
done
