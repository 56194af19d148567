//go:build interop

package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTorNetwork runs our programs under real tor (project issue 5, item 1) in a private Tor
// network on 127.0.0.1, inside a network namespace that has only loopback: two directory
// authorities that are also exits, and one bridge whose tor runs websocket-server as a managed
// transport with an Extended ORPort. Subtests share that network: ManagedClient (a tor client
// running websocket-client) and HAProxy (scale-out, item 4, in interop_haproxy_test.go).
func TestTorNetwork(t *testing.T) {
	if !torInNetns(t) {
		return
	}
	for _, tool := range []string{"tor", "tor-gencert", "haproxy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (tests/install-deps.sh installs it): %v", tool, err)
		}
	}
	server := program("websocket-server")
	logs := t.TempDir()
	torDumpOnFailure(t, logs)
	bridgeDebug := filepath.Join(logs, "bridge-debug.log")
	ptPort := torFreePort(t)
	tn := torStartNetwork(t,
		// Managed mode: no -log, so that our log lines reach tor as LOG lines.
		fmt.Sprintf("ServerTransportPlugin websocket exec %s -log-level info", server),
		fmt.Sprintf("ServerTransportListenAddr websocket 127.0.0.1:%d", ptPort),
		// url= goes out in the SMETHOD line's ARGS, and from there into tor's bridgelines.
		fmt.Sprintf("ServerTransportOptions websocket url=ws://127.0.0.1:%d/", ptPort),
		"Log info file "+filepath.Join(logs, "bridge-info.log"),
		// The Extended ORPort handshake is logged at debug level only.
		"Log [general,net]debug file "+bridgeDebug)

	registered := fmt.Sprintf("Registered server transport 'websocket' at '127.0.0.1:%d'", ptPort)
	if !torWaitFor(20*time.Second, func() bool { return torCount(tn.bridge.noticeLog(), registered) > 0 }) {
		t.Fatalf("the bridge did not log %q", registered)
	}
	t.Logf("bridge: %s", registered)
	// The line tor writes for operators to hand out: the client below uses it as it is.
	wantLine := fmt.Sprintf("Bridge websocket 127.0.0.1:%d %s url=ws://127.0.0.1:%d/", ptPort, tn.bridge.fingerprint, ptPort)
	lines := torLines(filepath.Join(tn.bridge.dir, "bridgelines"), wantLine)
	if len(lines) != 1 || strings.TrimSpace(lines[0]) != wantLine {
		t.Fatalf("the bridge's bridgelines file has no line %q: %q", wantLine, torLines(filepath.Join(tn.bridge.dir, "bridgelines")))
	}
	t.Logf("bridge: bridgelines holds %q", lines[0])

	t.Run("ManagedClient", func(t *testing.T) { torManagedClient(t, tn, lines[0], bridgeDebug) })
	t.Run("HAProxy", func(t *testing.T) { torHAProxyScaleOut(t, tn, bridgeDebug) })

	torCheckTransport(t, filepath.Join(logs, "bridge-info.log"), server)
	// tor stops its transports: closes their stdin, then SIGTERM.
	tn.bridge.proc.stop()
	if !torWaitFor(10*time.Second, func() bool { return len(torProcessesOf(server)) == 0 }) {
		t.Errorf("websocket-server still runs (PIDs %v) 10 s after its bridge's tor stopped", torProcessesOf(server))
	} else {
		t.Logf("websocket-server exited when its bridge's tor stopped")
	}
}

// torManagedClient starts a tor client that runs websocket-client as a managed transport and
// reaches the bridge through websocket-server with bridgeLine, then fetches the test file
// through the client's SocksPort and checks what tor logged.
func torManagedClient(t *testing.T, tn *torNetwork, bridgeLine, bridgeDebug string) {
	client := program("websocket-client")
	extORBefore := torCount(bridgeDebug, "Got client's hash and it was legit.")
	c := tn.torStartClient(t, "client", "UseBridges 1",
		fmt.Sprintf("ClientTransportPlugin websocket exec %s -log-level info", client),
		bridgeLine)
	t.Logf("client bootstrapped to 100%% through the websocket bridge in %.1f s", c.bootstrap.Seconds())

	start := time.Now()
	n, sum, err := torFetch(c.socksPort, "managed", tn.file, nil)
	if err != nil || n != int64(tn.file.size) || sum != tn.file.sum {
		t.Fatalf("fetch through tor: %d bytes, SHA-256 %s, error %v; want %d bytes, SHA-256 %s",
			n, sum, err, tn.file.size, tn.file.sum)
	}
	secs := time.Since(start).Seconds()
	t.Logf("fetched %s through SOCKS5 127.0.0.1:%d: %d bytes in %.1f s (%.2f MiB/s), SHA-256 %s matches",
		tn.file.url(), c.socksPort, n, secs, float64(n)/secs/(1<<20), sum)

	if torCount(c.infoLog(), "Successfully registered transport websocket") == 0 {
		t.Error("the client's tor did not log \"Successfully registered transport websocket\"")
	}
	// The bridge's tor logs these two lines for each Extended ORPort connection that passed
	// SAFE_COOKIE authentication and ended its commands with DONE: only a transport connects
	// there, so they show that websocket-server carried the client's connection.
	extOR := torCount(bridgeDebug, "Got client's hash and it was legit.") - extORBefore
	if extOR < 1 || torCount(bridgeDebug, "Received DONE.") < 1 {
		t.Errorf("the bridge's tor logged no authenticated Extended ORPort connection (%d)", extOR)
	} else {
		t.Logf("bridge: %d Extended ORPort connection(s) authenticated with SAFE_COOKIE during this client's run", extOR)
	}
	torCheckTransport(t, c.infoLog(), client)

	// tor stops its transport: websocket-client must exit with it.
	c.proc.stop()
	if !torWaitFor(10*time.Second, func() bool { return len(torProcessesOf(client)) == 0 }) {
		t.Errorf("websocket-client still runs (PIDs %v) 10 s after its tor stopped", torProcessesOf(client))
	}
	// TOR_PT_STATE_LOCATION names <DataDirectory>/pt_state/, which tor does not create.
	if fi, err := os.Stat(filepath.Join(c.dir, "pt_state")); err != nil {
		t.Errorf("websocket-client did not create its state directory: %v", err)
	} else if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("websocket-client's state directory pt_state: %v, want a directory with mode 0700", fi.Mode())
	}
}

// torCheckTransport checks, in tor's info-level log, what the managed transport at path
// wrote on its stdout (tor logs every line it gets: "Got a line from managed proxy"): each
// line must be one that pt-spec.txt defines, well formed, and no LOG message may carry an
// address but its listener's (the program runs without -unsafe-logging). Nor may tor have
// complained about a managed proxy, at warn or err level, or about an unknown line (at notice).
func torCheckTransport(t *testing.T, torLog, path string) {
	t.Helper()
	const quoted = `"(?:[^"\\]|\\.)*"`
	valid := regexp.MustCompile(`^(?:VERSION 1|CMETHODS DONE|SMETHODS DONE` +
		`|CMETHOD (?:websocket|flashproxy) socks[45] 127\.0\.0\.1:\d+|SMETHOD websocket 127\.0\.0\.1:\d+(?: ARGS:\S+)?` +
		`|LOG SEVERITY=(?:error|warning|notice|info|debug) MESSAGE=` + quoted +
		`|STATUS (?:TRANSPORT=websocket|TYPE=version)(?: \w+=(?:` + quoted + `|[^ "]+))+)$`)
	prefix := "Got a line from managed proxy '" + path + "': ("
	kinds := map[string]int{}
	for _, line := range torLines(torLog, prefix) {
		out := strings.TrimSuffix(line[strings.Index(line, prefix)+len(prefix):], ")")
		switch {
		case !valid.MatchString(out):
			t.Errorf("%s wrote a line that pt-spec.txt does not define, or malformed: %q", filepath.Base(path), out)
		case strings.HasPrefix(out, "LOG ") && strings.Contains(ownAddr.ReplaceAllString(out, ""), "127.0.0.1"):
			t.Errorf("%s logged an address: %q", filepath.Base(path), out)
		}
		if f := strings.Fields(out); len(f) > 0 {
			kinds[f[0]]++
		}
	}
	if kinds["VERSION"] != 1 || kinds["CMETHODS"]+kinds["SMETHODS"] != 1 {
		t.Errorf("tor did not get VERSION and one (C|S)METHODS DONE from %s: %v", filepath.Base(path), kinds)
	}
	var complaints []string
	for _, line := range torLines(torLog) {
		l := strings.ToLower(line)
		serious := strings.Contains(line, "[warn]") || strings.Contains(line, "[err]")
		for _, s := range []string{"managed proxy", "malformed", "unknown", "websocket-"} {
			if serious && strings.Contains(l, s) || strings.Contains(l, "unknown line received by managed proxy") {
				complaints = append(complaints, line)
				break
			}
		}
	}
	if len(complaints) > 0 {
		t.Errorf("tor complained about a managed proxy:\n%s", strings.Join(complaints, "\n"))
	}
	t.Logf("%s wrote these lines to tor: %v", filepath.Base(path), kinds)
}
