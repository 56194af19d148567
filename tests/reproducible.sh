#!/usr/bin/env bash
# Checks that "make build" gives byte-identical binaries when run in two different directories
# (the Makefile builds with -trimpath, no VCS stamp, an empty build id, CGO_ENABLED=0).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# One snapshot of the tree, copied twice; each build gets a Go cache of its own.
tar -C "$src" --exclude=./.git --exclude=./bin -cf "$work/tree.tar" .
for d in a b/deeper; do
	mkdir -p "$work/$d" "$work/cache-${d%%/*}"
	tar -C "$work/$d" -xf "$work/tree.tar"
	GOCACHE="$work/cache-${d%%/*}" make -s -C "$work/$d" build >/dev/null
done
status=0
for p in websocket-client websocket-server; do
	a=$(sha256sum <"$work/a/bin/$p" | cut -d' ' -f1)
	b=$(sha256sum <"$work/b/deeper/bin/$p" | cut -d' ' -f1)
	if [ "$a" = "$b" ]; then
		echo "reproducible: $p $a"
	else
		echo "NOT reproducible: $p differs between two build directories ($a, $b)" >&2
		status=1
	fi
done
exit $status
