# Build, test and install the websocket pluggable transport.
# Nothing here is needed to build: "go build ./..." and "go test ./..." work alone.

VERSION  ?= 0.1.0
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
DATADIR  ?= $(PREFIX)/share/websocket
GO       ?= go
FUZZTIME ?= 10s

# Reproducible: no cgo, no paths, no VCS stamp, an empty build id. Stripped (-s -w) unless
# STRIP=0, which keeps the symbol table and DWARF for a distribution's debug package.
STRIP     ?= 1
BUILDFLAGS = -trimpath -buildvcs=false -ldflags '$(if $(filter 0,$(STRIP)),,-s -w )-buildid= -X main.version=$(VERSION)'
PROGRAMS   = websocket-client websocket-server
# What Tor Browser ships on; "make release" builds them all (the Go toolchain alone, no cgo).
PLATFORMS  = windows/amd64 windows/386 darwin/amd64 darwin/arm64 linux/amd64 linux/386 linux/arm64 android/arm64

.PHONY: all build release demo test interop fuzz bench install uninstall clean

all: build

build:
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o bin/websocket-client ./client
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o bin/websocket-server ./server

# dist/websocket-{client,server}-VERSION-OS-ARCH[.exe] for each of PLATFORMS, and their SHA256SUMS.
release:
	rm -rf dist && mkdir dist
	@set -e; for t in $(PLATFORMS); do \
	  os=$${t%/*}; arch=$${t#*/}; ext=; if [ $$os = windows ]; then ext=.exe; fi; \
	  for p in client server; do \
	    echo "dist/websocket-$$p-$(VERSION)-$$os-$$arch$$ext"; \
	    CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(BUILDFLAGS) \
	      -o dist/websocket-$$p-$(VERSION)-$$os-$$arch$$ext ./$$p; \
	  done; \
	done
	cd dist && LC_ALL=C sha256sum websocket-* >SHA256SUMS

# The first thing to run: both programs carry 32 MiB each way on this machine, without tor.
demo: build
	$(GO) run ./tests/_demo -bin bin

test:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./...   # the files built for Windows alone, too
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run Allocs ./ws   # allocation counts: without the race detector

# Tests against real peers (tor, Chromium, nginx, HAProxy, node ws, websockify), and of the
# Windows builds under wine (tests/interop_wine_test.go), installed first by
# tests/install-deps.sh. Root: they run in a network namespace of their own with only a
# loopback interface. First, the systemd unit and AppArmor rule that doc/ ships are checked
# (tests/verify-configs.sh); after the tests, tests/debian-package.sh builds the Debian package of
# doc/PACKAGING.md offline and checks it (one more test). Ends with one line
# "interop: N passed, N failed" (tests and subtests).
interop:
	bash tests/install-deps.sh
	bash tests/verify-configs.sh
	@log=$$(mktemp); \
	{ unshare -n sh -c 'ip link set lo up && exec $(GO) test -tags interop -v -count=1 -timeout 20m ./tests/' 2>&1; \
	  echo $$? >"$$log.rc"; } | tee "$$log"; \
	rc=$$(cat "$$log.rc"); pass=$$(grep -c -- '--- PASS' "$$log"); fail=$$(grep -c -- '--- FAIL' "$$log"); \
	rm -f "$$log" "$$log.rc"; \
	if [ "$$rc" != 0 ] && [ "$$fail" = 0 ]; then fail=1; fi; \
	if bash tests/debian-package.sh; then pass=$$((pass+1)); else fail=$$((fail+1)); fi; \
	echo "interop: $$pass passed, $$fail failed"; [ "$$fail" = 0 ]

# Each fuzz target for FUZZTIME (go test -fuzz takes one target at a time).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

# The product's micro-benchmarks, then the harness (bench/, its own module) that
# compares the built programs with raw TCP and gorilla/websocket relays and
# rewrites doc/PERFORMANCE.md and doc/performance.svg.
bench: build
	$(GO) test -run='^$$' -bench=. -benchmem ./...
	cd bench && $(GO) run . -o ../doc/PERFORMANCE.md $(BENCHFLAGS)

# The browser proxy of flash-proxy mode goes to DATADIR/proxy, for a web server to serve.
install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DATADIR)/proxy
	install -m 0755 bin/websocket-client bin/websocket-server $(DESTDIR)$(BINDIR)/
	install -m 0644 doc/websocket-client.1 doc/websocket-server.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 proxy/proxy.html proxy/proxy.js $(DESTDIR)$(DATADIR)/proxy/

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(PROGRAMS)) \
	      $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(addsuffix .1,$(PROGRAMS))) \
	      $(DESTDIR)$(DATADIR)/proxy/proxy.html $(DESTDIR)$(DATADIR)/proxy/proxy.js
	-rmdir $(DESTDIR)$(DATADIR)/proxy $(DESTDIR)$(DATADIR) 2>/dev/null

clean:
	rm -rf bin dist
