package tests

// What a bridge operator sees: setup errors that do not make tor restart the transport in a
// loop, the listening address in the log, the bridge line tor writes from the SMETHOD line,
// and client errors that say what to check.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSmethodErrorStaysUp checks that after an SMETHOD-ERROR the server does not exit (tor
// would start it again every second, logging each time) but waits until tor ends it: stdin
// closed or SIGTERM, then exit status 0 at once. The error line names the file or option.
func TestSmethodErrorStaysUp(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, cert, key, "bridge.test")
	otherCert, otherKey := filepath.Join(dir, "other-cert.pem"), filepath.Join(dir, "other-key.pem")
	writeCert(t, otherCert, otherKey, "other.test")
	missing := filepath.Join(dir, "missing.pem")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // not defer: the subtests run after this function returns
	or := newExtOR(t)
	for _, tc := range []struct {
		name, options, bind, line, end string
	}{
		{"missing certificate", "websocket:tls-cert=" + missing + ";websocket:tls-key=" + key, "",
			"SMETHOD-ERROR websocket tls-cert " + missing + ", tls-key " + key + ": open " + missing + ": no such file or directory", "stdin"},
		{"key is a directory", "websocket:tls-cert=" + cert + ";websocket:tls-key=" + dir, "",
			"SMETHOD-ERROR websocket tls-cert " + cert + ", tls-key " + dir + ": read " + dir + ": is a directory", "SIGTERM"},
		{"key of another certificate", "websocket:tls-cert=" + cert + ";websocket:tls-key=" + otherKey, "",
			"SMETHOD-ERROR websocket tls-cert " + cert + ", tls-key " + otherKey + ": tls: private key does not match public key", "stdin"},
		{"unknown option", "websocket:colour=blue", "", `SMETHOD-ERROR websocket unknown option "colour"`, "stdin"},
		{"bad option", "websocket:max-conns=many", "", "SMETHOD-ERROR websocket option max-conns=many: parse error", "stdin"},
		{"url not ws", "websocket:url=http://192.0.2.1/", "",
			"SMETHOD-ERROR websocket option url=http://192.0.2.1/: want ws://HOST[:PORT]/PATH or wss://HOST[:PORT]/PATH", "stdin"},
		{"url with =", `websocket:url=wss://192.0.2.1/?k\=v`, "",
			"SMETHOD-ERROR websocket option url=wss://192.0.2.1/?k=v: tor's bridge line cannot carry a comma, an equals sign or a backslash: percent-encode them", "stdin"},
		{"no transport of ours", "", "obfs4", "SMETHODS DONE", "stdin"}, // tor asked for obfs4 only
		{"port in use", "", busy.Addr().String(),
			"SMETHOD-ERROR websocket listen tcp " + busy.Addr().String() + ": bind: address already in use", "stdin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := serverEnv(t, or, "TOR_PT_SERVER_TRANSPORT_OPTIONS="+tc.options)
			if tc.bind == "obfs4" {
				env = append(env, "TOR_PT_SERVER_TRANSPORTS=obfs4", "TOR_PT_SERVER_BINDADDR=obfs4-127.0.0.1:0")
			} else if tc.bind != "" {
				env = append(env, "TOR_PT_SERVER_BINDADDR=websocket-"+tc.bind)
			}
			p := startProc(t, "websocket-server", env)
			if out := "\n" + p.output(); !strings.Contains(out, "\n"+tc.line+"\n") || !strings.Contains(out, "\nSMETHODS DONE\n") {
				t.Errorf("output lacks %q or SMETHODS DONE:\n%s", tc.line, out)
			}
			// The old behaviour, exit 1, came within milliseconds.
			if code, err := p.wait(time.Second); err == nil {
				t.Fatalf("exited with status %d after an SMETHOD-ERROR; want it to wait for tor", code)
			}
			start := time.Now()
			if tc.end == "stdin" {
				p.stdin.Close()
			} else {
				p.cmd.Process.Signal(syscall.SIGTERM)
			}
			if code, err := p.wait(time.Second); err != nil || code != 0 {
				t.Fatalf("after %s: exit status %d (%v), want 0 within 1 s", tc.end, code, err)
			}
			t.Logf("stayed up after %q; exited %v after %s", tc.line, time.Since(start).Round(time.Millisecond), tc.end)
		})
	}
}

// TestStandaloneCookieChecked checks that in standalone mode an unreadable Extended ORPort
// cookie file is found at start, named, and is fatal (exit status 1): no tor restarts the
// program in a loop, and a service manager shows the failure.
func TestStandaloneCookieChecked(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "cookie")
	p := startProc(t, "websocket-server", nil, "-listen", closedAddr(t), "-extorport", closedAddr(t), "-auth-cookie", missing)
	if code, err := p.wait(waitLong); err != nil || code != 1 {
		t.Fatalf("exit status %d (%v), want 1", code, err)
	}
	if want := "pt: auth cookie: open " + missing + ": no such file or directory"; !strings.Contains(p.output(), want) {
		t.Errorf("no %q in the output:\n%s", want, p.output())
	}
}

// TestListeningAddressLogged checks that each program logs the address it listens on, as is:
// it is its own, which the operator chose (the cleanup checks that no other address appears).
func TestListeningAddressLogged(t *testing.T) {
	_, server, client := tunnel(t)
	for _, tc := range []struct {
		p    *proc
		want string
	}{
		{server, `LOG SEVERITY=notice MESSAGE="websocket-server dev listening on ` + server.addr + `"`},
		{client, `LOG SEVERITY=notice MESSAGE="websocket-client dev (SOCKS, websocket) listening on ` + client.addr + `"`},
	} {
		if !tc.p.waitOutput(tc.want) {
			t.Errorf("no %q in the output:\n%s", tc.want, tc.p.output())
		}
	}
}

// TestBridgeLineFromSmethod checks that the bridge line tor writes from the SMETHOD line
// (its "bridgelines" file) works with the client as is: the server announces url= in ARGS,
// the line is built as tor 0.4.9 builds it, and the client's tor passes its arguments on.
func TestBridgeLineFromSmethod(t *testing.T) {
	or := newExtOR(t)
	addr := closedAddr(t)
	// A -path that only the url= names: without url= in the bridge line the client gets 404.
	server := startProc(t, "websocket-server", serverEnv(t, or, "TOR_PT_SERVER_BINDADDR=websocket-"+addr,
		`TOR_PT_SERVER_TRANSPORT_OPTIONS=websocket:path=/s3cret;websocket:url=ws://`+addr+`/s3cret?x\:y%3Dz`))
	client := startProc(t, "websocket-client", clientEnv(t), "-log-level", "debug")
	// ARGS as pt-spec 3.3.3 escapes them (',', '=' and '\'); none of these here.
	smethod := "SMETHOD websocket " + addr + " ARGS:url=ws://" + addr + "/s3cret?x:y%3Dz"
	if !strings.Contains("\n"+server.output()+"\n", "\n"+smethod+"\n") {
		t.Fatalf("no line %q:\n%s", smethod, server.output())
	}
	// tor writes "Bridge websocket ADDR FINGERPRINT ARGS" with every ',' of ARGS turned into a
	// space and escapes left as they are (seen with tor 0.4.9.11, which is why url= refuses
	// ',', '=' and '\').
	args := strings.TrimPrefix(smethod, "SMETHOD websocket "+addr+" ARGS:")
	line := "Bridge websocket " + addr + " 0123456789ABCDEF0123456789ABCDEF01234567 " + strings.ReplaceAll(args, ",", " ")
	// The client's tor takes the k=v items after the fingerprint and sends them joined by ';',
	// escaping ';' and '\', as the SOCKS5 username.
	items := strings.Fields(line)[4:]
	for i, it := range items {
		items[i] = strings.NewReplacer(`\`, `\\`, `;`, `\;`).Replace(it)
	}
	conn, code := socks5(t, client.addr, addr, strings.Join(items, ";"))
	if code != 0 {
		t.Fatalf("bridge line %q: SOCKS reply %d, want 0", line, code)
	}
	oc := or.next(t)
	conn.Write([]byte("via the bridge line"))
	buf := make([]byte, len("via the bridge line"))
	if _, err := io.ReadFull(oc, buf); err != nil || string(buf) != "via the bridge line" {
		t.Fatalf("ORPort read %q, %v", buf, err)
	}
	t.Logf("tor's bridge line %q works as is", line)
}

// TestClientAdvice checks that each way a wss:// or ws:// connection to a bridge commonly
// fails gives a log line that says what to check, with no Go type name and no host name (the
// cleanup checks for ".example").
func TestClientAdvice(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, cert, key, "front.example")
	expiredCert, expiredKey := filepath.Join(dir, "expired.pem"), filepath.Join(dir, "expired-key.pem")
	writeCertDates(t, expiredCert, expiredKey, "front.example", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	caFile := filepath.Join(dir, "ca.pem") // the client's trusted CAs: both self-signed certificates
	a, _ := os.ReadFile(cert)
	b, _ := os.ReadFile(expiredCert)
	if err := os.WriteFile(caFile, append(a, b...), 0o600); err != nil {
		t.Fatal(err)
	}
	or := newExtOR(t)
	tlsServer := startProc(t, "websocket-server", serverEnv(t, or,
		"TOR_PT_SERVER_TRANSPORT_OPTIONS=websocket:tls-cert="+cert+";websocket:tls-key="+key))
	expired := startProc(t, "websocket-server", serverEnv(t, or,
		"TOR_PT_SERVER_TRANSPORT_OPTIONS=websocket:tls-cert="+expiredCert+";websocket:tls-key="+expiredKey))
	plain := startProc(t, "websocket-server", serverEnv(t, or, "TOR_PT_SERVER_TRANSPORT_OPTIONS=websocket:path=/ws"))
	trusting := startProc(t, "websocket-client", clientEnv(t, "SSL_CERT_FILE="+caFile))
	distrusting := startProc(t, "websocket-client", clientEnv(t, "SSL_CERT_FILE="+os.DevNull))
	for _, tc := range []struct {
		name   string
		client *proc
		target string
		args   string
		want   string
	}{
		{"name", trusting, tlsServer.addr, "url=wss://bridge.example/",
			"TLS: the bridge's certificate is not valid for the url= host (check url=, or set front= to a name the certificate holds)"},
		{"no trusted CA", distrusting, tlsServer.addr, "url=wss://front.example/",
			"TLS: no trusted CA signed the bridge's certificate (self-signed? or a TLS-intercepting proxy on the way?)"},
		{"expired", trusting, expired.addr, "url=wss://front.example/",
			"TLS: the bridge's certificate has expired or is not valid yet (check its dates and this computer's clock)"},
		{"ws to a TLS port", trusting, tlsServer.addr, "url=ws://front.example/",
			`WebSocket handshake: websocket: handshake refused: status "400 Bad Request" (a TLS port? is the URL wss://?)`},
		{"wss to a plain port", trusting, plain.addr, "url=wss://front.example/ws",
			"TLS: the bridge answered without TLS (a plain port? is the URL ws://?)"},
		{"wrong path", trusting, plain.addr, "url=ws://bridge.example/wrong",
			`WebSocket handshake: websocket: handshake refused: status "404 Not Found"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, code := socks5(t, tc.client.addr, tc.target, tc.args); code == 0 {
				t.Fatal("SOCKS request granted")
			}
			want := `LOG SEVERITY=warning MESSAGE="connecting to the bridge: ` + strings.ReplaceAll(tc.want, `"`, `\"`) + `"`
			if !tc.client.waitOutput(want) {
				t.Errorf("no %q in the log:\n%s", want, tc.client.output())
			}
		})
	}
	// The same client accepts a certificate that is valid, trusted and names the url= host.
	if _, code := socks5(t, trusting.addr, tlsServer.addr, "url=wss://front.example/"); code != 0 {
		t.Errorf("valid certificate: SOCKS reply %d, want 0", code)
	}
}

// writeCertDates writes a self-signed certificate for name, valid from notBefore to notAfter,
// and its key.
func writeCertDates(t *testing.T, certFile, keyFile, name string, notBefore, notAfter time.Time) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}

// fillTemplate returns the file at path (a shipped configuration, doc/...) with each @KEY@
// replaced by values[KEY]. It fails the test if a placeholder is left or a value is unused.
func fillTemplate(t *testing.T, path string, values map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range values {
		if !strings.Contains(s, "@"+k+"@") {
			t.Fatalf("%s has no placeholder @%s@", path, k)
		}
		s = strings.ReplaceAll(s, "@"+k+"@", v)
	}
	if m := regexp.MustCompile(`@[A-Z_]+@`).FindString(s); m != "" {
		t.Fatalf("%s: placeholder %s left unfilled", path, m)
	}
	return s
}
