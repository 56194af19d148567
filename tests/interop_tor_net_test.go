//go:build interop

package tests

// Helpers for the interop tests against real tor (interop_tor_test.go) and HAProxy
// (interop_haproxy_test.go): a private Tor network on 127.0.0.1 (two directory authorities
// that are also exits, one bridge), tor clients, a file served over HTTP, fetches through a
// SocksPort, and child processes with their output in files. Every name starts with "tor" so
// that nothing clashes with the other interop files. The torrc settings are the smallest set
// known to bootstrap a bridge client with Debian's tor 0.4.9.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bounds of the waits (generous: the machine has 2 busy cores).
const (
	torNetworkWait   = 90 * time.Second // bridge holds a consensus listing both authorities
	torBootstrapWait = 90 * time.Second // client logs "Bootstrapped 100%"
	torFetchWait     = 90 * time.Second // one HTTP fetch through the SocksPort
)

// torInNetns makes sure the calling test runs in a network namespace that has only a
// loopback interface. When this process is isolated already it returns true. Otherwise it
// runs this one test again in a fresh namespace (root and unshare(1) needed; a new PID
// namespace too, so that every process it starts dies with it), passes that run's output
// through, fails if that run failed, and returns false: the caller returns at once.
func torInNetns(t *testing.T) bool {
	t.Helper()
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	isolated := true
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp != 0 && ifc.Flags&net.FlagLoopback == 0 {
			isolated = false
		}
	}
	if isolated {
		return true
	}
	if os.Getenv("WEBSOCKET_INTEROP_NETNS") != "" {
		t.Fatal("still not isolated inside the namespace made by unshare")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 {
		t.Fatal("this test runs tor only inside a network namespace with loopback alone: run it as root " +
			"with unshare(1) installed, or under: unshare -n sh -c 'ip link set lo up && go test ...'")
	}
	args := []string{"--net", "--pid", "--fork", "--kill-child", "--mount-proc",
		"sh", "-c", `ip link set lo up && exec "$@"`, "sh", os.Args[0],
		"-test.run=^" + t.Name() + "$"}
	for _, name := range []string{"test.v", "test.timeout"} {
		if f := flag.Lookup(name); f != nil {
			args = append(args, "-"+name+"="+f.Value.String())
		}
	}
	t.Logf("not isolated: running %s again under unshare %s", t.Name(), strings.Join(args, " "))
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(os.Environ(), "WEBSOCKET_INTEROP_NETNS=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s inside the network namespace: %v", t.Name(), err)
	}
	return false
}

// torFreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func torFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// torProc is a child process whose stdout and stderr go to a file.
type torProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// torStart starts cmd with its output appended to logPath. The test's Cleanup stops it by
// PID (SIGTERM, then SIGKILL after 10 s), whatever the outcome.
func torStart(t *testing.T, name, logPath string, cmd *exec.Cmd) *torProc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &torProc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop sends SIGTERM and waits; SIGKILL after 10 s. It tells whether SIGTERM was enough.
// Calling it again is harmless.
func (p *torProc) stop() bool {
	if p.exited() {
		return true
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(10 * time.Second):
		p.kill()
		return false
	}
}

// kill sends SIGKILL and waits for the process to end.
func (p *torProc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

func (p *torProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// torWaitFor polls cond every 200 ms until it holds (true) or limit has passed (false).
func torWaitFor(limit time.Duration, cond func() bool) bool {
	end := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// torLines returns the lines of a file that contain every one of subs (none if unreadable).
func torLines(path string, subs ...string) []string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		all := line != ""
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			out = append(out, line)
		}
	}
	return out
}

// torDumpOnFailure registers a Cleanup that, if the test failed, prints the last lines of
// every *.log file under dir: tor's logs, our transports' logs, HAProxy's.
func torDumpOnFailure(t *testing.T, dir string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() && strings.HasSuffix(path, ".log") {
				lines := torLines(path)
				if len(lines) > 40 {
					lines = lines[len(lines)-40:]
				}
				t.Logf("---- last lines of %s:\n%s", path, strings.Join(lines, "\n"))
			}
			return nil
		})
	})
}

// torProcessesOf lists the PIDs of running processes whose executable is path.
func torProcessesOf(path string) []string {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	var pids []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if exe, err := os.Readlink(d + "/exe"); err == nil && exe == path {
			pids = append(pids, filepath.Base(d))
		}
	}
	return pids
}

// torFile is a file of random bytes served over HTTP on 127.0.0.1.
type torFile struct {
	port, size int
	sum        string // hex SHA-256
}

// torServeFile serves size random bytes at http://127.0.0.1:port/file until the test ends.
func torServeFile(t *testing.T, port, size int) *torFile {
	t.Helper()
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	f := &torFile{port: port, size: size, sum: hex.EncodeToString(sum[:])}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/file" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return f
}

func (f *torFile) url() string { return fmt.Sprintf("http://127.0.0.1:%d/file", f.port) }

// torFetch gets f through tor's SocksPort (SOCKS5, the IP address 127.0.0.1 as destination),
// with user as SOCKS username: a username no earlier stream used gets a new circuit
// (IsolateSOCKSAuth, on by default). If midway is not nil, it is called once the first MiB
// has arrived, and reading goes on when it returns. It returns the body's length and hex
// SHA-256.
func torFetch(socksPort int, user string, f *torFile, midway func()) (int64, string, error) {
	proxy := &url.URL{Scheme: "socks5", Host: fmt.Sprintf("127.0.0.1:%d", socksPort),
		User: url.UserPassword(user, "x")}
	tr := &http.Transport{Proxy: http.ProxyURL(proxy), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: torFetchWait}
	resp, err := c.Get(f.url())
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("HTTP status %s", resp.Status)
	}
	h := sha256.New()
	n, err := io.CopyN(h, resp.Body, 1<<20)
	if err == nil {
		if midway != nil {
			midway()
		}
		var rest int64
		rest, err = io.Copy(h, resp.Body)
		n += rest
	}
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// torNode is one tor process of the network.
type torNode struct {
	name, dir   string
	orPort      int
	fingerprint string // 40 hex digits
	proc        *torProc
}

func (n *torNode) noticeLog() string { return filepath.Join(n.dir, "notice.log") }

// torNetwork is two directory authorities that are also exits, and one bridge (from
// torStartNetwork), all on 127.0.0.1.
type torNetwork struct {
	dir       string
	file      *torFile // the test file, on the port the exit policies name
	auths     []*torNode
	bridge    *torNode
	extORPort int
	common    []string // torrc lines every node needs (DirAuthority lines included)
}

// torNewNode makes the DataDirectory dir/name and, unless orPort is 0 (a client), the
// relay identity key in it, whose fingerprint it reads with tor --list-fingerprint.
func torNewNode(t *testing.T, dir, name string, orPort int) *torNode {
	t.Helper()
	n := &torNode{name: name, dir: filepath.Join(dir, name), orPort: orPort}
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if orPort == 0 {
		return n
	}
	rc := filepath.Join(n.dir, "torrc-fingerprint")
	torWriteLines(t, rc, "DataDirectory "+n.dir, "Nickname "+name,
		fmt.Sprintf("ORPort 127.0.0.1:%d", orPort), "Log err stderr")
	out, err := exec.Command("tor", "--list-fingerprint", "-f", rc).CombinedOutput()
	m := regexp.MustCompile(`(?m)^` + name + ` ((?:[0-9A-F]{4} ?){10})\s*$`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("tor --list-fingerprint for %s: %v\n%s", name, err, out)
	}
	n.fingerprint = strings.ReplaceAll(string(m[1]), " ", "")
	return n
}

func torWriteLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// run writes the node's torrc (its own lines, common, then extra) and starts tor with it.
func (n *torNode) run(t *testing.T, common []string, extra ...string) {
	t.Helper()
	rc := filepath.Join(n.dir, "torrc")
	lines := append([]string{"DataDirectory " + n.dir, "Nickname " + n.name,
		"Log notice file " + n.noticeLog(),
		// tor exits by itself if this test process has gone (a guard for a crashed run).
		fmt.Sprintf("__OwningControllerProcess %d", os.Getpid())}, common...)
	torWriteLines(t, rc, append(lines, extra...)...)
	n.proc = torStart(t, "tor "+n.name, filepath.Join(n.dir, "stdout.log"), exec.Command("tor", "-f", rc))
}

// torStartNetwork starts the authorities and the bridge, whose torrc gets bridgeExtra (its
// transport), and waits until the bridge holds a consensus listing both authorities. The
// processes belong to t; their logs are printed if t fails.
func torStartNetwork(t *testing.T, bridgeExtra ...string) *torNetwork {
	t.Helper()
	start := time.Now()
	tn := &torNetwork{dir: t.TempDir()}
	torDumpOnFailure(t, tn.dir)
	tn.file = torServeFile(t, torFreePort(t), 8<<20)
	resolv := filepath.Join(tn.dir, "resolv.conf")
	torWriteLines(t, resolv, "nameserver 127.0.0.1")
	tn.common = []string{"TestingTorNetwork 1", "AssumeReachable 1",
		"PathsNeededToBuildCircuits 0.67", "TestingDirAuthVoteExit *",
		"TestingDirAuthVoteGuard *", "TestingDirAuthVoteHSDir *",
		"TestingMinExitFlagThreshold 0", "V3AuthNIntervalsValid 2", "ShutdownWaitLength 0",
		"SafeLogging 0", "ServerDNSResolvConfFile " + resolv, "ServerDNSDetectHijacking 0"}
	dirPorts := []int{torFreePort(t), torFreePort(t)}
	for i, dirPort := range dirPorts {
		a := torNewNode(t, tn.dir, fmt.Sprintf("auth%d", i+1), torFreePort(t))
		keys := filepath.Join(a.dir, "keys")
		gencert := exec.Command("tor-gencert", "--create-identity-key", "--passphrase-fd", "0",
			"-m", "12", "-a", fmt.Sprintf("127.0.0.1:%d", dirPort),
			"-i", filepath.Join(keys, "authority_identity_key"),
			"-s", filepath.Join(keys, "authority_signing_key"),
			"-c", filepath.Join(keys, "authority_certificate"))
		gencert.Dir, gencert.Stdin = a.dir, strings.NewReader("")
		if out, err := gencert.CombinedOutput(); err != nil {
			t.Fatalf("tor-gencert: %v\n%s", err, out)
		}
		cert, err := os.ReadFile(filepath.Join(keys, "authority_certificate"))
		m := regexp.MustCompile(`(?m)^fingerprint ([0-9A-F]{40})$`).FindSubmatch(cert)
		if err != nil || m == nil {
			t.Fatalf("no fingerprint line in the authority certificate: %v", err)
		}
		tn.common = append(tn.common, fmt.Sprintf("DirAuthority %s orport=%d no-v2 v3ident=%s 127.0.0.1:%d %s",
			a.name, a.orPort, m[1], dirPort, a.fingerprint))
		tn.auths = append(tn.auths, a)
	}
	for i, a := range tn.auths {
		a.run(t, tn.common, "SocksPort 0", "AuthoritativeDirectory 1", "V3AuthoritativeDirectory 1",
			fmt.Sprintf("ORPort 127.0.0.1:%d", a.orPort), fmt.Sprintf("DirPort 127.0.0.1:%d", dirPorts[i]),
			"Address 127.0.0.1", "ContactInfo websocket interop test",
			"TestingV3AuthInitialVotingInterval 5", "TestingV3AuthInitialVoteDelay 2",
			"TestingV3AuthInitialDistDelay 2", "V3AuthVotingInterval 10", "V3AuthVoteDelay 2",
			"V3AuthDistDelay 2", "ExitRelay 1", "ExitPolicyRejectPrivate 0",
			"ExitPolicy accept 127.0.0.1:*", fmt.Sprintf("ExitPolicy accept *:%d", tn.file.port),
			"ExitPolicy reject *:*")
	}
	tn.bridge = torNewNode(t, tn.dir, "bridge", torFreePort(t))
	tn.extORPort = torFreePort(t)
	tn.bridge.run(t, tn.common, append([]string{"SocksPort 0", "BridgeRelay 1", "PublishServerDescriptor 0",
		"ContactInfo websocket interop test",
		fmt.Sprintf("ORPort 127.0.0.1:%d", tn.bridge.orPort),
		fmt.Sprintf("ExtORPort 127.0.0.1:%d", tn.extORPort)},
		bridgeExtra...)...)
	consensus := filepath.Join(tn.bridge.dir, "cached-microdesc-consensus")
	nodes := append([]*torNode{tn.bridge}, tn.auths...)
	if !torWaitFor(torNetworkWait, func() bool {
		return torRouters(consensus) >= 2 || torAnyExited(nodes)
	}) || torAnyExited(nodes) {
		t.Fatalf("the bridge has no consensus listing both authorities after %.0f s, or a tor exited",
			time.Since(start).Seconds())
	}
	t.Logf("tor network ready (2 authorities, 1 bridge) in %.1f s", time.Since(start).Seconds())
	return tn
}

// torRouters counts the routers ("r " lines) of a consensus file.
func torRouters(consensus string) int {
	n := 0
	for _, line := range torLines(consensus, "r ") {
		if strings.HasPrefix(line, "r ") {
			n++
		}
	}
	return n
}

// torAnyExited tells whether one of the nodes' tor has exited.
func torAnyExited(nodes []*torNode) bool {
	for _, n := range nodes {
		if n.proc.exited() {
			return true
		}
	}
	return false
}

// cookieFile is the bridge's Extended ORPort authentication cookie.
func (tn *torNetwork) cookieFile() string {
	return filepath.Join(tn.bridge.dir, "extended_orport_auth_cookie")
}

// torClient is a tor client of the network, with its SocksPort.
type torClient struct {
	*torNode
	socksPort int
	bootstrap time.Duration // from start to "Bootstrapped 100%"
}

func (c *torClient) infoLog() string { return filepath.Join(c.dir, "info.log") }

// torStartClient starts a client (a fresh DataDirectory under the test's TempDir, with extra
// torrc lines: UseBridges, transport, Bridge) owned by t, and waits for Bootstrapped 100%.
func (tn *torNetwork) torStartClient(t *testing.T, name string, extra ...string) *torClient {
	t.Helper()
	dir := t.TempDir() // the client's files live as long as its test
	torDumpOnFailure(t, dir)
	c := &torClient{torNode: torNewNode(t, dir, name, 0), socksPort: torFreePort(t)}
	start := time.Now()
	c.run(t, tn.common, append([]string{fmt.Sprintf("SocksPort 127.0.0.1:%d", c.socksPort),
		"Log info file " + c.infoLog()}, extra...)...)
	if !torWaitFor(torBootstrapWait, func() bool {
		return len(torLines(c.noticeLog(), "Bootstrapped 100%")) > 0 || c.proc.exited()
	}) {
		t.Fatalf("%s did not bootstrap within %v", name, torBootstrapWait)
	}
	if c.proc.exited() {
		t.Fatalf("the tor of %s exited", name)
	}
	c.bootstrap = time.Since(start)
	return c
}

// torCount counts the lines of a file that contain sub.
func torCount(path, sub string) int { return len(torLines(path, sub)) }
