#!/usr/bin/env bash
# Checks that "make build" and "make release" give byte-identical binaries when run in two
# different directories, each with a Go cache of its own (the Makefile builds with -trimpath,
# no VCS stamp, an empty build id, CGO_ENABLED=0), and that the release's SHA256SUMS match its
# files. "make release" cross-builds every platform in the Makefile's PLATFORMS.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# One snapshot of the tree, copied twice; each build gets a Go cache of its own.
tar -C "$src" --exclude=./.git --exclude=./bin --exclude=./dist -cf "$work/tree.tar" .
for d in a b/deeper; do
	mkdir -p "$work/$d" "$work/cache-${d%%/*}"
	tar -C "$work/$d" -xf "$work/tree.tar"
	GOCACHE="$work/cache-${d%%/*}" make -s -C "$work/$d" build release >/dev/null
done
status=0
(cd "$work/a/dist" && sha256sum --quiet -c SHA256SUMS) || { echo "SHA256SUMS does not match dist/" >&2; status=1; }
files=$(cd "$work/a" && ls bin/* dist/*)
for f in $files; do
	a=$(sha256sum <"$work/a/$f" | cut -d' ' -f1)
	b=$(sha256sum <"$work/b/deeper/$f" 2>/dev/null | cut -d' ' -f1)
	if [ "$a" = "$b" ]; then
		echo "reproducible: $f $a"
	else
		echo "NOT reproducible: $f differs between two build directories ($a, ${b:-missing})" >&2
		status=1
	fi
done
[ "$(cd "$work/b/deeper" && ls bin/* dist/*)" = "$files" ] || { echo "the two builds made different files" >&2; status=1; }
exit $status
