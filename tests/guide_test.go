package tests

// doc/BRIDGE.md checked where a test can: the files it quotes are the shipped ones (which the
// interop tests run), its torrc options and its systemd unit's command line work.

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// readGuide returns doc/BRIDGE.md.
func readGuide(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../doc/BRIDGE.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGuideQuotesShippedFiles checks that BRIDGE.md quotes doc/nginx-websocket.conf and
// doc/websocket-server.service whole, and that its sed command fills every placeholder.
func TestGuideQuotesShippedFiles(t *testing.T) {
	guide := readGuide(t)
	for file, lang := range map[string]string{"nginx-websocket.conf": "nginx", "websocket-server.service": "ini"} {
		b, err := os.ReadFile(filepath.Join("../doc", file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(guide, "```"+lang+"\n"+string(b)+"```\n") {
			t.Errorf("BRIDGE.md does not quote doc/%s as it is", file)
		}
	}
	i := strings.Index(guide, "sed -e 's|@")
	if i < 0 {
		t.Fatal("no sed command in BRIDGE.md")
	}
	cmd, _, _ := strings.Cut(guide[i:], "| sudo tee")
	conf, err := os.ReadFile("../doc/nginx-websocket.conf")
	if err != nil {
		t.Fatal(err)
	}
	s := string(conf)
	for _, m := range regexp.MustCompile(`-e 's\|([^|]*)\|([^|]*)\|'`).FindAllStringSubmatch(cmd, -1) {
		s = strings.ReplaceAll(s, m[1], m[2])
	}
	if left := regexp.MustCompile(`@[A-Z_]+@`).FindAllString(s, -1); len(left) > 0 {
		t.Errorf("BRIDGE.md's sed command leaves %v in doc/nginx-websocket.conf", left)
	}
}

// TestGuideTorrcOptions gives websocket-server the ServerTransportOptions lines of BRIDGE.md's
// torrc (layout B, and layout A's with test files for its certificate) as tor passes them,
// and checks the SMETHOD line: url= announced in ARGS.
func TestGuideTorrcOptions(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, cert, key, "bridge.example.com")
	lines := regexp.MustCompile(`(?m)^(?:# A: )?ServerTransportOptions websocket (.*)$`).FindAllStringSubmatch(readGuide(t), -1)
	if len(lines) != 2 {
		t.Fatalf("%d ServerTransportOptions lines in BRIDGE.md, want 2 (layouts A and B)", len(lines))
	}
	or := newExtOR(t)
	for _, line := range lines {
		var opts []string
		url := ""
		for _, kv := range strings.Fields(line[1]) {
			kv = strings.NewReplacer("/etc/tor/websocket/cert.pem", cert, "/etc/tor/websocket/key.pem", key).Replace(kv)
			// tor: "transport:k=v" items joined by ';', with ':', ';' and '\' escaped.
			opts = append(opts, "websocket:"+strings.NewReplacer(`\`, `\\`, `:`, `\:`, `;`, `\;`).Replace(kv))
			if v, ok := strings.CutPrefix(kv, "url="); ok {
				url = v
			}
		}
		p := startProc(t, "websocket-server", serverEnv(t, or, "TOR_PT_SERVER_TRANSPORT_OPTIONS="+strings.Join(opts, ";")))
		if want := "SMETHOD websocket " + p.addr + " ARGS:url=" + url + "\n"; url == "" || !strings.Contains(p.output(), want) {
			t.Errorf("ServerTransportOptions websocket %s: no %q:\n%s", line[1], want, p.output())
		}
	}
}

// TestGuideUnitCommandLine runs websocket-server with the command line of
// doc/websocket-server.service (its addresses and cookie file replaced by the test's) and
// checks a tunnel through it: at the unit's -path, the client's address taken from nginx's
// X-Forwarded-For. It also checks that BRIDGE.md's torrc for the unit has its ExtORPort.
func TestGuideUnitCommandLine(t *testing.T) {
	unit, err := os.ReadFile("../doc/websocket-server.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ExecStart=(\S+) ((?:.*\\\n)*.*)$`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("no ExecStart line in doc/websocket-server.service")
	}
	args := strings.Fields(strings.ReplaceAll(string(m[2]), "\\\n", " "))
	or := newExtOR(t)
	listen, path, extOR := "", "", ""
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "-listen":
			listen, args[i+1] = args[i+1], closedAddr(t)
		case "-path":
			path = args[i+1]
		case "-extorport":
			extOR, args[i+1] = args[i+1], or.ln.Addr().String()
		case "-auth-cookie":
			args[i+1] = or.cookieFile // "%d/...": systemd's credentials directory
		}
	}
	if listen == "" || path == "" || extOR == "" {
		t.Fatalf("ExecStart lacks -listen, -path or -extorport: %q", m[2])
	}
	if !strings.Contains(readGuide(t), "\nExtORPort "+extOR+"\n") {
		t.Errorf("BRIDGE.md's torrc for the unit has no \"ExtORPort %s\" line", extOR)
	}
	addr := args[1+slices.Index(args, "-listen")]
	startStandalone(t, "websocket-server", addr, args...)
	dialWS(t, addr, path, http.Header{"X-Forwarded-For": {"203.0.113.7"}})
	if oc := or.next(t); oc.userAddr != "203.0.113.7" {
		t.Errorf("USERADDR %q, want the X-Forwarded-For address 203.0.113.7", oc.userAddr)
	}
}
