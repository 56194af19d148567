#!/usr/bin/env bash
# "go vet" (which type-checks tests too) of every package, the demo (tests/_demo, outside
# ./...) and, where they can run (Linux), the interop tests, for each platform of the Makefile's
# PLATFORMS: every package and test must build for all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for t in $(sed -n 's/^PLATFORMS *= *//p' Makefile); do
	os=${t%/*} arch=${t#*/}
	tags=()
	if [ "$os" = linux ]; then tags=(-tags interop); fi
	if CGO_ENABLED=0 GOOS=$os GOARCH=$arch go vet "${tags[@]}" ./... ./tests/_demo; then
		echo "vet $t: ok"
	else
		echo "vet $t: FAILED" >&2
		status=1
	fi
done
exit $status
