#!/usr/bin/env bash
# Builds the Debian package from the recipe in doc/PACKAGING.md, offline, and checks it: the
# .deb holds websocket-client, websocket-server and both man pages at the Makefile's VERSION,
# the browser proxy page and the operator's examples, Static-Built-Using names Go, and lintian
# reports no error. Run as root ("make interop" runs it): it installs the tools with the page's
# own commands (golang-any and dh-golang from bookworm-backports there), then builds in a
# network namespace with loopback only, so nothing can be downloaded.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
pkg=websocket-pt
version=$(sed -n 's/^VERSION *?= *//p' "$src/Makefile")
export DEBIAN_FRONTEND=noninteractive

# 1. Tools, from Debian's packages only: on bookworm, doc/PACKAGING.md's commands ("The
#    tools") run as written, answering yes, when a tool is missing or Go is older than 1.22.
need="dh-golang golang-any lintian debhelper devscripts dpkg-dev build-essential"
missing=$(for p in $need; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
installed=$(dpkg-query -W -f '${Version}' golang-any 2>/dev/null || true)
if [ -n "$missing" ] || ! dpkg --compare-versions "${installed:-0}" ge '2:1.22~'; then
	if [ "$(. /etc/os-release && echo "$VERSION_CODENAME")" = bookworm ]; then
		commands=$(awk '/^#### The tools/ { on = 1 } on && /^```sh/ { inblock = 1; next }
			inblock && /^```/ { exit } inblock' "$src/doc/PACKAGING.md")
		[ -n "$commands" ] || { echo "debian-package: no commands under \"The tools\" in doc/PACKAGING.md" >&2; exit 1; }
		conf=$(mktemp)
		echo 'APT::Get::Assume-Yes "true";' >"$conf"
		APT_CONFIG=$conf bash -euo pipefail -c "$commands" >/dev/null
		rm -f "$conf"
	else
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends $need >/dev/null
	fi
fi

# 2. The source tree, with debian/ from doc/PACKAGING.md.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tree=$work/$pkg-$version
mkdir -p "$tree"
tar -C "$src" --exclude=./.git --exclude=./bin --exclude=./dist --exclude=node_modules --exclude=./tests/wine32 -cf - . | tar -C "$tree" -xf -
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
for f in control rules copyright changelog source/format $pkg.manpages $pkg.install $pkg.examples; do
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
# The browser proxy page (debian/*.install) and the operator's examples, as in the source.
for f in proxy/proxy.html proxy/proxy.js; do
	cmp -s "$src/$f" "$work/root/usr/share/websocket/$f" || fail "/usr/share/websocket/$f missing or not $f"
done
for f in nginx-websocket.conf websocket-server.service bridge-selftest.sh; do
	cmp -s "$src/doc/$f" "$work/root/usr/share/doc/$pkg/examples/$f" || fail "example $f missing or changed"
done
# dh-golang >= 1.59 names the Go toolchain the programs were linked with there.
dpkg-deb -f "$deb" Static-Built-Using | grep -q '^golang-1\.' ||
	fail "Static-Built-Using does not name the Go toolchain: '$(dpkg-deb -f "$deb" Static-Built-Using)'"
dpkg-deb -c "$deb" | awk '{print "  " $NF}' | grep -E 'bin/|man1/|doc/|share/websocket/'

# 5. lintian: no error-level tag.
lintian --fail-on error --display-info "$work"/${pkg}_"$version"-1_*.changes >"$work/lintian.log" 2>&1 || {
	fail "lintian reports errors"
}
sed 's/^/  lintian: /' "$work/lintian.log"
[ "$status" = 0 ] && echo "debian-package: $(basename "$deb") ok: both programs and man pages at $version, the proxy page, the examples, no lintian error"
exit $status
