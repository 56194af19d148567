//go:build interop

package tests

// The Windows builds at run time, under Debian's wine64 (8.0): Tor Browser ships the client on
// Windows more than anywhere else. One wine prefix, made once per run by TestWindows, serves
// all its subtests. wine 8.0 lacks bcryptprimitives.dll, which every Go >= 1.22 Windows program needs at
// start; tests/wine/bcryptprimitives.c stands in for Windows 10's own. windows/386 runs in
// wine64's wow64 mode on the 32-bit DLLs that tests/install-deps.sh unpacks into wine32/.

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	wine64      = "/usr/lib/wine/wine64" // Debian's wine64 puts its loader there, off PATH
	wineBuiltin = "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows"
	wine32      = "wine32" // from tests/install-deps.sh: i386-windows/ and x86_64-unix
)

// winePrefix is the prefix that the subtests of TestWindows share, and the Windows programs.
type winePrefix struct {
	dir                       string
	env                       []string // WINEPREFIX and the like, for every wine command
	client, server, client386 string   // the .exe files
	build, boot               time.Duration
}

// newWinePrefix builds the Windows programs and the shim DLL into a temporary directory, and
// makes a prefix there with wineboot; everything goes at the end of the test.
func newWinePrefix(t *testing.T) *winePrefix {
	t.Helper()
	dir := t.TempDir()
	w32, err := filepath.Abs(wine32)
	if err != nil {
		t.Fatal(err)
	}
	w := &winePrefix{dir: filepath.Join(dir, "prefix"),
		client: filepath.Join(dir, "websocket-client.exe"), server: filepath.Join(dir, "websocket-server.exe"),
		client386: filepath.Join(dir, "websocket-client-386.exe")}
	// No Mono nor Gecko (nothing here needs them), no debug output, the 32-bit DLLs.
	w.env = []string{"WINEPREFIX=" + w.dir, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=", "WINEDLLPATH=" + w32}
	start := time.Now()
	builds := [][]string{
		{"GOARCH=amd64", "go", "build", "-trimpath", "-o", w.client, "../client"},
		{"GOARCH=amd64", "go", "build", "-trimpath", "-o", w.server, "../server"},
		{"GOARCH=386", "go", "build", "-trimpath", "-o", w.client386, "../client"},
	}
	for bits, cc := range map[string]string{"64": "x86_64-w64-mingw32-gcc", "32": "i686-w64-mingw32-gcc"} {
		// Exports undecorated (ProcessPrng, not ProcessPrng@8), without the C runtime.
		builds = append(builds, []string{"GOARCH=", cc, "-o", filepath.Join(dir, "bcryptprimitives"+bits+".dll"),
			"-shared", "-O2", "-s", "-nostdlib", "-Wall", "-Wl,--kill-at", "wine/bcryptprimitives.c", "-ladvapi32"})
	}
	for _, c := range builds {
		cmd := exec.Command(c[1], c[2:]...)
		cmd.Env = append(os.Environ(), "GOOS=windows", "CGO_ENABLED=0", c[0])
		if out, err := runBounded(cmd, 3*time.Minute); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
	}
	w.build, start = time.Since(start), time.Now()
	// wineboot's output goes to a file: the processes it leaves running (services.exe and
	// others, which wine keeps until the last Windows program has ended) would hold a pipe open.
	bootLog, err := os.Create(filepath.Join(dir, "wineboot.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer bootLog.Close()
	boot := exec.Command(wine64, "wineboot", "-i")
	boot.Env = append(os.Environ(), w.env...)
	boot.Stdout, boot.Stderr = bootLog, bootLog
	t.Cleanup(func() { // ends the wineserver, and any Windows process left
		kill := exec.Command(filepath.Join(filepath.Dir(wine64), "wineserver"), "-k")
		kill.Env = boot.Env
		runBounded(kill, interopTimeout)
	})
	if _, err := runBounded(boot, 3*time.Minute); err != nil {
		out, _ := os.ReadFile(bootLog.Name())
		t.Fatalf("%s: %v\n%s", boot, err, out)
	}
	// A Windows program that waits on its stdin until the test ends keeps those processes
	// running: started again by a program under test, they would hold its stdout open after
	// it has exited.
	holder := exec.Command(wine64, "cmd.exe")
	holder.Env = boot.Env
	if _, err := holder.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	// wineboot copied wine's builtin DLLs and programs into the prefix, 64-bit and 32-bit
	// (1.2 GB): links do as well.
	err = filepath.WalkDir(filepath.Join(w.dir, "drive_c"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		copied, err := d.Info()
		if err != nil {
			return err
		}
		for _, builtins := range []string{wineBuiltin, filepath.Join(w32, "i386-windows")} {
			builtin := filepath.Join(builtins, d.Name())
			if orig, err := os.Stat(builtin); err == nil && orig.Size() == copied.Size() {
				if err := os.Remove(path); err != nil {
					return err
				}
				return os.Symlink(builtin, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for bits, system := range map[string]string{"64": "system32", "32": "syswow64"} {
		shim, err := os.ReadFile(filepath.Join(dir, "bcryptprimitives"+bits+".dll"))
		if err == nil {
			err = os.WriteFile(filepath.Join(w.dir, "drive_c", "windows", system, "bcryptprimitives.dll"), shim, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	w.boot = time.Since(start)
	return w
}

// runBounded runs cmd and returns its output, if cmd has no Stdout of its own; it kills cmd
// after limit.
func runBounded(cmd *exec.Cmd, limit time.Duration) ([]byte, error) {
	timer := time.AfterFunc(limit, func() {
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	if cmd.Stdout != nil {
		return nil, cmd.Run()
	}
	return cmd.CombinedOutput()
}

// winPath is path as a Windows tor hands it: a drive letter (Z: is the Unix root in wine) and
// backslashes.
func winPath(path string) string { return `Z:` + strings.ReplaceAll(path, "/", `\`) }

// wrapper writes a script that tor (on Linux) runs as a managed transport: exe under wine, with
// the paths that tor hands over turned into Windows paths.
func (w *winePrefix) wrapper(t *testing.T, exe string) string {
	t.Helper()
	script := "#!/bin/sh\n"
	for _, e := range w.env {
		script += fmt.Sprintf("export '%s'\n", e)
	}
	for _, v := range []string{"TOR_PT_STATE_LOCATION", "TOR_PT_AUTH_COOKIE_FILE"} {
		script += fmt.Sprintf(`[ -z "$%[1]s" ] || %[1]s="Z:$(printf %%s "$%[1]s" | tr / '\\')"`+"\n", v)
	}
	script += fmt.Sprintf("exec %s %s \"$@\"\n", wine64, exe)
	path := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(exe), ".exe")+".sh")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// start runs exe under wine as tor runs a managed transport, with env (Windows paths) and args.
func (w *winePrefix) start(t *testing.T, exe string, env []string, args ...string) *proc {
	t.Helper()
	env = append(append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"TOR_PT_MANAGED_TRANSPORT_VER=1", "TOR_PT_EXIT_ON_STDIN_CLOSE=1"}, w.env...), env...)
	return startCommand(t, exec.Command(wine64, append([]string{exe}, args...)...), env)
}

// stdinClose closes p's stdin, as tor does on Windows before it ends a transport, and checks
// that p exits with status 0 within a second.
func stdinClose(t *testing.T, p *proc) {
	t.Helper()
	start := time.Now()
	p.stdin.Close()
	if code, err := p.wait(time.Second); err != nil || code != 0 {
		t.Fatalf("after stdin closed: exit status %d, %v", code, err)
	}
	t.Logf("exited %v after its stdin closed", time.Since(start).Round(time.Millisecond))
}

// fileHolds fails the test unless the file at path contains each of subs.
func fileHolds(t *testing.T, path string, subs ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	for _, s := range subs {
		if err != nil || !strings.Contains(string(b), s) {
			t.Errorf("%s does not hold %q (%v):\n%s", path, s, err, b)
		}
	}
}

// TestWindows runs the windows/amd64 programs (and windows/386 websocket-client) under wine: the
// managed protocol with Windows paths, a tunnel, stdin close, the SOCKS failure replies built
// from Winsock's error codes, and a private Tor network whose bridge and client both run them.
func TestWindows(t *testing.T) {
	if !torInNetns(t) {
		return
	}
	w := newWinePrefix(t)
	du, _ := exec.Command("du", "-sh", w.dir).Output()
	t.Logf("Windows programs and shims built in %.1f s; wine prefix made in %.1f s, %s",
		w.build.Seconds(), w.boot.Seconds(), strings.Fields(string(du) + " ?")[0])

	t.Run("Managed", func(t *testing.T) {
		dir := t.TempDir()
		or := newExtOR(t)
		// Paths with drive letters, backslashes and a space, as on Windows.
		server := w.start(t, w.server, []string{"TOR_PT_SERVER_TRANSPORTS=websocket",
			"TOR_PT_SERVER_BINDADDR=websocket-127.0.0.1:0", "TOR_PT_ORPORT=" + closedAddr(t),
			"TOR_PT_EXTENDED_SERVER_PORT=" + or.ln.Addr().String(),
			"TOR_PT_AUTH_COOKIE_FILE=" + winPath(or.cookieFile),
			"TOR_PT_STATE_LOCATION=" + winPath(filepath.Join(dir, "server state"))},
			"-log", winPath(filepath.Join(dir, "server.log")), "-log-level", "debug")
		client := w.start(t, w.client, []string{"TOR_PT_CLIENT_TRANSPORTS=websocket",
			"TOR_PT_STATE_LOCATION=" + winPath(filepath.Join(dir, "client state"))},
			"-log", winPath(filepath.Join(dir, "client.log")), "-log-level", "debug")
		if server.addr == "" || client.addr == "" {
			t.Fatalf("no method line:\n%s\n%s", server.output(), client.output())
		}
		for _, name := range []string{"server state", "client state"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || !fi.IsDir() {
				t.Errorf("TOR_PT_STATE_LOCATION %s: no directory made: %v", winPath(filepath.Join(dir, name)), err)
			}
		}
		conn, code := socks5(t, client.addr, server.addr, "")
		if code != 0 {
			t.Fatalf("SOCKS reply %d, want 0", code)
		}
		echoThrough(t, conn, or.next(t), 1<<20)
		// -log took the Windows paths. Windows has no SIGHUP to reopen them: the man pages
		// say to truncate the file in place instead, which works as the file is appended to.
		clientLog := filepath.Join(dir, "client.log")
		fileHolds(t, clientLog, "listening on")
		if err := os.Truncate(clientLog, 0); err != nil {
			t.Fatal(err)
		}
		stdinClose(t, client)
		stdinClose(t, server)
		fileHolds(t, clientLog, "summary: 1 connections")
		if b, _ := os.ReadFile(clientLog); strings.Contains(string(b), "listening on") || strings.Contains(string(b), "\x00") {
			t.Errorf("%s after truncation in place: the old lines, or a hole (not appended):\n%q", clientLog, b)
		}
		fileHolds(t, filepath.Join(dir, "server.log"), "listening on", "summary: 1 connections")
	})

	t.Run("SocksFailures", func(t *testing.T) {
		client := w.start(t, w.client, []string{"TOR_PT_CLIENT_TRANSPORTS=websocket",
			"TOR_PT_STATE_LOCATION=" + winPath(t.TempDir())}, "-log-level", "debug")
		unreachable := "127.0.0.99"
		ip(t, "route", "add", "unreachable", unreachable+"/32", "table", "local")
		t.Cleanup(func() { ip(t, "route", "del", "unreachable", unreachable+"/32", "table", "local") })
		for _, tc := range []struct {
			name, target string
			code         byte
		}{
			{"connection refused", closedAddr(t), 5},     // WSAECONNREFUSED
			{"host unreachable", unreachable + ":80", 4}, // WSAEHOSTUNREACH
			{"timeout", droppingAddr(t), 6},              // WSAETIMEDOUT: TTL expired
		} {
			start := time.Now()
			_, code := socks5(t, client.addr, tc.target, "")
			if code != tc.code {
				t.Errorf("%s: SOCKS reply %d, want %d", tc.name, code, tc.code)
			} else {
				t.Logf("%s: SOCKS reply %d after %v", tc.name, code, time.Since(start).Round(time.Millisecond))
			}
		}
		// Each reply came from Winsock's own error (winapi error #10065 and the like), not from
		// a deadline of the program's.
		if n := strings.Count(client.output(), "connectex: "); n != 3 {
			t.Errorf("%d ConnectEx errors logged, want 3:\n%s", n, client.output())
		}
		stdinClose(t, client)
	})

	t.Run("386", func(t *testing.T) {
		client := w.start(t, w.client386, []string{"TOR_PT_CLIENT_TRANSPORTS=websocket",
			"TOR_PT_STATE_LOCATION=" + winPath(t.TempDir())})
		if client.addr == "" {
			t.Fatalf("no CMETHOD line:\n%s", client.output())
		}
		stdinClose(t, client)
	})

	t.Run("Tor", func(t *testing.T) { torWindows(t, w) })
}

// ip runs ip(8) with args, in this test's network namespace.
func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// droppingAddr returns a loopback address that drops the SYNs sent to it: a listener whose
// accept queue (backlog 0) is full. A connect there times out in 3 s, as the kernel makes one
// retry only (tcp_syn_retries, a setting of this network namespace alone) until the test ends.
func droppingAddr(t *testing.T) string {
	t.Helper()
	const retries = "/proc/sys/net/ipv4/tcp_syn_retries"
	old, err := os.ReadFile(retries)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(retries, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(retries, old, 0o644) })
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err == nil {
		err = syscall.Listen(fd, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	filler, err := net.DialTimeout("tcp", addr, interopTimeout) // fills the queue of one
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filler.Close() })
	return addr
}

// torWindows runs a private Tor network whose bridge runs the Windows websocket-server, and a
// tor client that reaches it through the Windows websocket-client, both under wine, then
// fetches the test file through the client's SocksPort.
func torWindows(t *testing.T, w *winePrefix) {
	logs := t.TempDir()
	torDumpOnFailure(t, logs)
	server, client := w.wrapper(t, w.server), w.wrapper(t, w.client)
	ptPort := torFreePort(t)
	tn := torStartNetwork(t,
		fmt.Sprintf("ServerTransportPlugin websocket exec %s -log-level info", server),
		fmt.Sprintf("ServerTransportListenAddr websocket 127.0.0.1:%d", ptPort),
		fmt.Sprintf("ServerTransportOptions websocket url=ws://127.0.0.1:%d/", ptPort),
		"Log info file "+filepath.Join(logs, "bridge-info.log"))
	bridgeLine := fmt.Sprintf("Bridge websocket 127.0.0.1:%d %s url=ws://127.0.0.1:%d/", ptPort, tn.bridge.fingerprint, ptPort)
	if !torWaitFor(torNetworkWait, func() bool { return len(torLines(filepath.Join(tn.bridge.dir, "bridgelines"), bridgeLine)) > 0 }) {
		t.Fatalf("the bridge's bridgelines file has no line %q", bridgeLine)
	}
	c := tn.torStartClient(t, "winclient", "UseBridges 1",
		fmt.Sprintf("ClientTransportPlugin websocket exec %s -log-level info", client), bridgeLine)
	t.Logf("client bootstrapped to 100%% through the Windows websocket-client and -server in %.1f s", c.bootstrap.Seconds())
	torFetchOK(t, c, tn.file, "windows")
	torCheckTransport(t, c.infoLog(), client)
	torCheckTransport(t, filepath.Join(logs, "bridge-info.log"), server)
	// tor on Linux ends its transports with stdin close and SIGTERM: they must be gone.
	exeDir := filepath.Dir(w.client)
	if running := wineProcesses(exeDir); len(running) != 2 {
		t.Errorf("running Windows programs: %q, want the client and the server", running)
	}
	c.proc.stop()
	tn.bridge.proc.stop()
	if !torWaitFor(10*time.Second, func() bool { return len(wineProcesses(exeDir)) == 0 }) {
		t.Errorf("still running 10 s after their tor stopped: %q", wineProcesses(exeDir))
	}
	if fi, err := os.Stat(filepath.Join(c.dir, "pt_state")); err != nil || !fi.IsDir() {
		t.Errorf("websocket-client.exe did not make its state directory from a Z: path: %v", err)
	}
}

// wineProcesses lists the command lines of running processes that name a file of dir.
func wineProcesses(dir string) []string {
	var found []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, _ := os.ReadFile(d + "/cmdline")
		if line := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")); strings.Contains(line, dir+"/") {
			found = append(found, line)
		}
	}
	return found
}
