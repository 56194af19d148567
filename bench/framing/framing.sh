#!/bin/bash
# The download direction's framing alone (see main.go), each relay's CPU per GiB:
#   bench/framing/framing.sh SIZE_MiB ROUNDS NAME=FIRST_MODE,SECOND_MODE[,RELAY_FLAGS...] ...
# e.g. framing.sh 256 8 raw=raw,raw writev=frame-writev,unframe-writev \
#        splice2=frame-splice2,unframe-splice2 "capped=frame-writev,unframe-writev,-local-buf=131072 -ws-buf=262144"
# Each round sends SIZE MiB through each chain in turn; every delivery is checked by SHA-256.
# Prints each round, then each chain's medians.
set -euo pipefail
cd "$(dirname "$0")"
SIZE=$1; ROUNDS=$2; shift 2
D=$(mktemp -d); B=$D/framing
go build -o "$B" .
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
SINK=127.0.0.1:$(port)
"$B" sink -listen "$SINK" >"$D/sink" & PIDS=($!)
trap 'kill "${PIDS[@]}" 2>/dev/null; rm -rf "$D"' EXIT
declare -A ENTRY FIRST SECOND
NAMES=()
for spec in "$@"; do
	n=${spec%%=*}; IFS=, read -r m1 m2 flags <<<"${spec#*=}"
	NAMES+=("$n"); ENTRY[$n]=127.0.0.1:$(port); mid=127.0.0.1:$(port)
	"$B" relay -mode "$m2" -listen "$mid" -to "$SINK" ${flags:-} & SECOND[$n]=$!
	"$B" relay -mode "$m1" -listen "${ENTRY[$n]}" -to "$mid" ${flags:-} & FIRST[$n]=$!
	PIDS+=("${FIRST[$n]}" "${SECOND[$n]}")
done
sleep 0.5
cpu() { awk '{s+=$1} END {print s/1e9}' /proc/"$1"/task/*/schedstat; }
lines=0
for r in $(seq "$ROUNDS"); do
	for n in "${NAMES[@]}"; do
		a0=$(cpu "${FIRST[$n]}"); b0=$(cpu "${SECOND[$n]}")
		read -r rate unit sum <<<"$("$B" source -to "${ENTRY[$n]}" -mib "$SIZE")"
		lines=$((lines + 1))
		for _ in $(seq 100); do [ "$(wc -l <"$D/sink")" -ge $lines ] && break; sleep 0.05; done
		got=$(sed -n "${lines}p" "$D/sink")
		[ "$got" = "$((SIZE << 20)) $sum" ] || { echo "$n: delivered '$got', sent $((SIZE << 20)) $sum" >&2; exit 1; }
		a1=$(cpu "${FIRST[$n]}"); b1=$(cpu "${SECOND[$n]}")
		python3 -c "g=$SIZE/1024; print('%-10s %5s MB/s  framing %.2f  unframing %.2f  both %.2f s/GiB' % ('$n', '$rate', ($a1-$a0)/g, ($b1-$b0)/g, ($a1-$a0+$b1-$b0)/g))"
	done
done | tee "$D/rounds"
python3 - "$D/rounds" <<'PY'
import sys, statistics as st, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split()
    rows[f[0]].append((float(f[1]), float(f[4]), float(f[6]), float(f[8])))
print("medians:")
for name, r in rows.items():
    m = [st.median(x[i] for x in r) for i in range(4)]
    print("  %-10s both %.2f s/GiB (framing %.2f, unframing %.2f), %.0f MB/s, %d rounds" % (name, m[3], m[1], m[2], m[0], len(r)))
PY
