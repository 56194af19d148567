#!/usr/bin/env bash
# Builds the Debian package from the recipe in doc/PACKAGING.md, offline, and checks it: the
# .deb holds websocket-client, websocket-server and both man pages at the Makefile's VERSION,
# and lintian reports no error. Run as root ("make interop" runs it): it installs dh-golang,
# golang-any (from bookworm-backports when the release's is older than 1.22) and lintian, then
# builds in a network namespace with loopback only, so nothing can be downloaded.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
pkg=websocket-pt
version=$(sed -n 's/^VERSION *?= *//p' "$src/Makefile")
export DEBIAN_FRONTEND=noninteractive

# 1. Tools, from Debian's packages only.
need="dh-golang golang-any lintian debhelper dpkg-dev build-essential"
missing=$(for p in $need; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then apt-get update -qq; fi
candidate=$(apt-cache policy golang-any | sed -n 's/^ *Candidate: //p')
backports=()
if ! dpkg --compare-versions "$candidate" ge '2:1.22~'; then
	codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
	list=/etc/apt/sources.list.d/$codename-backports.sources
	if ! grep -rqs "$codename-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
		printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
			"$codename" >"$list"
		apt-get update -qq
	fi
	backports=(-t "$codename-backports")
	missing="$missing golang-any dh-golang" # dh-golang too: the backport knows newer Go
fi
installed=$(dpkg-query -W -f '${Version}' golang-any 2>/dev/null || true)
if [ -n "$missing" ] || ! dpkg --compare-versions "${installed:-0}" ge '2:1.22~'; then
	apt-get install -y -qq --no-install-recommends "${backports[@]}" $missing golang-any >/dev/null
fi

# 2. The source tree, with debian/ from doc/PACKAGING.md.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tree=$work/$pkg-$version
mkdir -p "$tree"
tar -C "$src" --exclude=./.git --exclude=./bin --exclude=./dist --exclude=node_modules -cf - . | tar -C "$tree" -xf -
# Each "#### `debian/NAME`" heading is followed by a fenced block: the file's text.
awk -v dir="$tree" '
	/^#### `debian\/[^`]*`/ { split($0, a, "`"); name = a[2]; next }
	/^```/ && name != "" && !infile { infile = 1; out = dir "/" name; system("mkdir -p \"$(dirname " out ")\""); printf "" >out; next }
	/^```/ && infile { infile = 0; close(out); name = ""; next }
	infile { print >>out }
' "$src/doc/PACKAGING.md"
chmod +x "$tree/debian/rules"
{
	echo "$pkg ($version-1) unstable; urgency=medium"
	echo
	echo "  * Built by tests/debian-package.sh from doc/PACKAGING.md."
	echo
	echo " -- Debian Go Packaging Team <team+pkg-go@tracker.debian.org>  $(date -R -u -d @0)"
} >"$tree/debian/changelog"
sed -e 's/^/ /' -e 's/^ $/ ./' "$src/LICENSE" >>"$tree/debian/copyright"
for f in control rules copyright changelog source/format $pkg.manpages; do
	[ -s "$tree/debian/$f" ] || { echo "debian-package: debian/$f missing from doc/PACKAGING.md" >&2; exit 1; }
done

# 3. Build offline, with Debian's Go (not one in /usr/local), unit tests included.
start=$(date +%s)
if ! unshare -n sh -c 'ip link set lo up && cd "$0" && exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$1" \
	GOTOOLCHAIN=local DEB_BUILD_OPTIONS="$2" dpkg-buildpackage -us -uc -b' "$tree" "$work" "${DEB_BUILD_OPTIONS:-}" \
	>"$work/build.log" 2>&1; then
	grep -v -- '--- PASS' "$work/build.log" | tail -50 >&2 # make interop counts PASS lines
	echo "debian-package: dpkg-buildpackage failed" >&2
	exit 1
fi
gover=$(grep -m1 -o 'go version go[0-9.]*' "$work/build.log" || /usr/bin/go version)
echo "debian-package: built in $(($(date +%s) - start)) s ($gover)"

# 4. What the package holds.
deb=$(ls "$work"/${pkg}_"$version"-1_*.deb)
dpkg-deb -x "$deb" "$work/root"
status=0
fail() { echo "debian-package: $*" >&2; status=1; }
[ "$(dpkg-deb -f "$deb" Version)" = "$version-1" ] || fail "package version $(dpkg-deb -f "$deb" Version)"
for p in websocket-client websocket-server; do
	bin=$work/root/usr/bin/$p man=$work/root/usr/share/man/man1/$p.1.gz
	if [ ! -x "$bin" ]; then
		fail "no /usr/bin/$p"
	elif [ "$("$bin" -version)" != "$p $version" ]; then
		fail "$p -version says: $("$bin" -version)"
	fi
	if [ ! -s "$man" ]; then
		fail "no man page $p.1.gz"
	elif ! zcat "$man" | grep -q "^\.TH $(echo "$p" | tr a-z A-Z) 1 .*\"websocket $version\""; then
		fail "$p.1 is not at version $version: $(zcat "$man" | grep -m1 '^\.TH')"
	fi
done
[ -e "$work/root/usr/bin/client" ] || [ -e "$work/root/usr/bin/server" ] || [ -e "$work/root/usr/bin/demo" ] &&
	fail "a program under its directory's name: $(ls "$work/root/usr/bin")"
dpkg-deb -c "$deb" | awk '{print "  " $NF}' | grep -E 'bin/|man1/|doc/'

# 5. lintian: no error-level tag.
lintian --fail-on error --display-info "$work"/${pkg}_"$version"-1_*.changes >"$work/lintian.log" 2>&1 || {
	fail "lintian reports errors"
}
sed 's/^/  lintian: /' "$work/lintian.log"
[ "$status" = 0 ] && echo "debian-package: $(basename "$deb") ok: both programs and man pages at $version, no lintian error"
exit $status
