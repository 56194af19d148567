//go:build interop

package tests

import (
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// torHAProxyScaleOut is the subtest HAProxy of TestTorNetwork (project issue 5, item 4):
// HAProxy, in mode http, balances two standalone websocket-server instances in front of the
// network's one bridge (both use its Extended ORPort and cookie); a tor client's Bridge line
// names HAProxy's port. HAProxy connects to the instances from 127.0.0.2, which they trust
// as a proxy, and adds X-Forwarded-For. The client bootstraps and fetches; then the instance that carries the
// client's connection is killed in the middle of a fetch, and fresh fetches on new circuits
// must still succeed, through the surviving instance.
func torHAProxyScaleOut(t *testing.T, tn *torNetwork, bridgeDebug string) {
	logs := t.TempDir()
	torDumpOnFailure(t, logs)
	server := program("websocket-server")
	names := []string{"ws1", "ws2"}
	var insts []*torProc
	var backends []string
	for _, name := range names {
		addr := fmt.Sprintf("127.0.0.1:%d", torFreePort(t))
		insts = append(insts, torStart(t, name, filepath.Join(logs, name+".log"), exec.Command(server,
			"-listen", addr, "-extorport", fmt.Sprintf("127.0.0.1:%d", tn.extORPort),
			"-auth-cookie", tn.cookieFile(), "-trusted-proxy", "127.0.0.2/32", "-log-level", "info")))
		backends = append(backends, fmt.Sprintf("\tserver %s %s check inter 500ms fall 2 rise 1", name, addr))
	}
	haPort := torFreePort(t)
	sock := filepath.Join(logs, "haproxy.sock")
	cfg := filepath.Join(logs, "haproxy.cfg")
	torWriteLines(t, cfg, append([]string{
		"global", "\tstats socket " + sock + " mode 600 level admin", "\tlog stdout format raw local0",
		"defaults", "\tmode http", "\tlog global", "\toption httplog", "\tretries 3", "\toption redispatch",
		"\ttimeout connect 5s", "\ttimeout client 60s", "\ttimeout server 60s", "\ttimeout tunnel 1h",
		"\toption forwardfor",
		"frontend websocket", fmt.Sprintf("\tbind 127.0.0.1:%d", haPort), "\tdefault_backend servers",
		"backend servers", "\tbalance roundrobin", "\tsource 127.0.0.2"}, backends...)...)
	if out, err := exec.Command("haproxy", "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	ha := torStart(t, "haproxy", filepath.Join(logs, "haproxy.log"), exec.Command("haproxy", "-db", "-f", cfg))
	if !torWaitFor(15*time.Second, func() bool {
		st, err := torHAProxyStats(sock)
		return err == nil && strings.HasPrefix(st["ws1"].status, "UP") && strings.HasPrefix(st["ws2"].status, "UP")
	}) {
		st, err := torHAProxyStats(sock)
		t.Fatalf("HAProxy does not see both websocket-server instances UP: %v %v", st, err)
	}

	extORBefore := torCount(bridgeDebug, "Got client's hash and it was legit.")
	userAddrsBefore := torCount(bridgeDebug, "Received USERADDR.")
	c := tn.torStartClient(t, "haclient", "UseBridges 1",
		fmt.Sprintf("ClientTransportPlugin websocket exec %s -log-level info", program("websocket-client")),
		fmt.Sprintf("Bridge websocket 127.0.0.1:%d %s url=ws://127.0.0.1:%d/", haPort, tn.bridge.fingerprint, haPort))
	t.Logf("client bootstrapped to 100%% through HAProxy in %.1f s", c.bootstrap.Seconds())
	torFetchOK(t, c, tn.file, "before")
	before, err := torHAProxyStats(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("HAProxy before the kill: ws1 %v, ws2 %v", before["ws1"], before["ws2"])
	// The victim is the instance that carries the client's connection to the bridge now.
	victim := 0
	if before["ws2"].current > before["ws1"].current {
		victim = 1
	}
	if before[names[victim]].current == 0 {
		t.Fatalf("no instance carries the client's connection: %v", before)
	}
	survivor := names[1-victim]

	// Kill the victim while a fetch is running on its connection: that fetch holds its
	// reading after the first MiB until the victim is dead.
	midway, resume, inflight := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		n, sum, err := torFetch(c.socksPort, "inflight", tn.file, func() { close(midway); <-resume })
		if err == nil && (n != int64(tn.file.size) || sum != tn.file.sum) {
			err = fmt.Errorf("%d bytes, SHA-256 %s", n, sum)
		}
		inflight <- err
	}()
	select {
	case <-midway:
	case err := <-inflight:
		t.Fatalf("the fetch to interrupt failed before its first MiB: %v", err)
	}
	insts[victim].kill()
	killed := time.Now()
	if !torWaitFor(10*time.Second, func() bool {
		st, err := torHAProxyStats(sock)
		return err == nil && strings.HasPrefix(st[names[victim]].status, "DOWN")
	}) {
		t.Errorf("HAProxy did not mark the killed %s DOWN within 10 s", names[victim])
	} else {
		t.Logf("killed %s (SIGKILL) during a fetch; HAProxy marked it DOWN after %.1f s",
			names[victim], time.Since(killed).Seconds())
	}
	// The stream on the dead connection is lost (unless tor had buffered the rest already);
	// what matters is that tor learns of it and the fetches below succeed.
	close(resume)
	t.Logf("the fetch interrupted by the kill ended with: %v", <-inflight)

	for i := 1; i <= 3; i++ {
		torFetchOK(t, c, tn.file, fmt.Sprintf("after-%d", i))
	}
	after, err := torHAProxyStats(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("HAProxy after: ws1 %v, ws2 %v", after["ws1"], after["ws2"])
	if after[survivor].total <= before[survivor].total || after[survivor].current == 0 {
		t.Errorf("the fetches after the kill did not go through the surviving %s", survivor)
	} else {
		t.Logf("after the kill, %s took %d new connection(s) and carries the client now",
			survivor, after[survivor].total-before[survivor].total)
	}
	t.Logf("bridge: %d Extended ORPort connection(s) authenticated during the HAProxy run",
		torCount(bridgeDebug, "Got client's hash and it was legit.")-extORBefore)
	if ha.exited() {
		t.Error("haproxy exited")
	}
	// HAProxy connects from 127.0.0.2, the instances' trusted proxy, and names the client's
	// 127.0.0.1 in X-Forwarded-For: USERADDR must be that address, without port (tor logs
	// it with port 0), and tor must have accepted it (the fetches above worked).
	userAddrs, rewrite := map[string]int{}, regexp.MustCompile(` to '([^']*)'`)
	for _, line := range torLines(bridgeDebug, "Received USERADDR.")[userAddrsBefore:] {
		if m := rewrite.FindStringSubmatch(line); m != nil {
			userAddrs[m[1]]++
		}
	}
	if len(userAddrs) != 1 || userAddrs["127.0.0.1:0"] < 2 {
		t.Errorf("USERADDR seen by the bridge's tor from the instances: %v, want 127.0.0.1 without port from each", userAddrs)
	} else {
		t.Logf("bridge: USERADDR from X-Forwarded-For, without port, accepted by tor: %v", userAddrs)
	}
	torCheckTransport(t, c.infoLog(), program("websocket-client"))
	// HAProxy logs each session when it ends (option httplog): server, HTTP status, bytes
	// sent to the client. Once the client has gone, both instances must have answered
	// 101 Switching Protocols.
	c.proc.stop()
	haLog := filepath.Join(logs, "haproxy.log")
	if !torWaitFor(10*time.Second, func() bool {
		s := torHAProxySessions(haLog)
		return s["ws1"] != "" && s["ws2"] != ""
	}) {
		t.Errorf("HAProxy's log does not show a session through each instance: %v", torHAProxySessions(haLog))
	}
	sessions := torHAProxySessions(haLog)
	for _, name := range names {
		t.Logf("HAProxy, last session through %s: status %s", name, sessions[name])
		if !strings.HasPrefix(sessions[name], "101 ") {
			t.Errorf("HAProxy: the session through %s was not a WebSocket session (101)", name)
		}
	}
	ha.stop()
	if !insts[1-victim].stop() {
		t.Errorf("websocket-server (standalone) did not exit within 10 s of SIGTERM")
	}
	for _, name := range names {
		log := filepath.Join(logs, name+".log")
		for _, line := range torLines(log, "127.0.0.1") {
			if strings.Contains(ownAddr.ReplaceAllString(line, ""), "127.0.0.1") {
				t.Errorf("%s logged an address (not its own) without -unsafe-logging: %s", name, line)
			}
		}
		if lines := torLines(log, "summary"); len(lines) > 0 {
			t.Logf("%s's last words: %s", name, lines[len(lines)-1])
		}
	}
}

// torFetchOK fetches the test file through the client with a new SOCKS username (a new
// circuit), fails the test unless every byte arrived, and returns the seconds it took.
func torFetchOK(t *testing.T, c *torClient, f *torFile, user string) float64 {
	t.Helper()
	start := time.Now()
	n, sum, err := torFetch(c.socksPort, user, f, nil)
	if err != nil || n != int64(f.size) || sum != f.sum {
		t.Fatalf("fetch %q: %d bytes, SHA-256 %s, error %v; want %d bytes, SHA-256 %s",
			user, n, sum, err, f.size, f.sum)
	}
	secs := time.Since(start).Seconds()
	t.Logf("fetch %q: %d bytes in %.1f s, SHA-256 matches", user, n, secs)
	return secs
}

// torHAProxySessions reads HAProxy's log: for each backend server, the HTTP status and
// the bytes sent to the client of its last session that ended, e.g. "101, 10146203 bytes".
func torHAProxySessions(haLog string) map[string]string {
	session := regexp.MustCompile(`servers/(ws\d) \S+ (\d{3}) (\d+) `)
	sessions := map[string]string{}
	for _, line := range torLines(haLog, "servers/") {
		if m := session.FindStringSubmatch(line); m != nil {
			sessions[m[1]] = m[2] + " " + m[3] + " bytes to the client"
		}
	}
	return sessions
}

// torServerStat is one backend server's line in HAProxy's "show stat".
type torServerStat struct {
	status         string // UP, DOWN, ...
	current, total int    // sessions now (scur), sessions in all (stot)
}

func (s torServerStat) String() string {
	return fmt.Sprintf("%s, %d session(s) now, %d in all", s.status, s.current, s.total)
}

// torHAProxyStats asks HAProxy's stats socket for the backend servers' state, by name.
func torHAProxyStats(sock string) (map[string]torServerStat, error) {
	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "show stat\n"); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(b), "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("HAProxy stats: %v %q", err, b)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	st := map[string]torServerStat{}
	for _, row := range rows[1:] {
		if len(row) < len(rows[0]) || row[col["pxname"]] != "servers" {
			continue
		}
		cur, _ := strconv.Atoi(row[col["scur"]])
		tot, _ := strconv.Atoi(row[col["stot"]])
		st[row[col["svname"]]] = torServerStat{status: row[col["status"]], current: cur, total: tot}
	}
	return st, nil
}
