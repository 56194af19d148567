#!/usr/bin/env python3
"""An independent check of the harness's figures: its own load generator, target, timing and CPU
accounting (utime+stime from /proc/PID/stat) and a different push size (256 KiB), as a reader of
doc/PERFORMANCE.md might measure.

Usage (from bench/, after make build):
    python3 independent.py [-rounds 8] [-size 256] [NAME=BINDIR ...]

Each round moves SIZE MiB through each chain in turn (the order rotating each round), an upload
(towards the target: our client masks, our server unmasks), then a download (from the target: our
server frames, our client unframes). The chains: raw (two `bench relay-raw`: io.Copy, which
splices), copy (two `bench relay-copy`: read into a buffer, then write, the least a relay can cost
while the bytes pass through its memory), gorilla (two gorilla/websocket relays), ours
(websocket-client over SOCKS5, then websocket-server, from ../bin) and ours built elsewhere, named
NAME, for each NAME=BINDIR (to compare builds). It prints, per direction and per chain, the median
(min-max) MB/s and relays' CPU s/GiB, then per direction the paired medians (the median over rounds
of the ratio within a round) of each of our chains ÷ raw, ÷ copy, ÷ gorilla and ÷ ours.
Loopback only.
"""
import os, socket, statistics, struct, subprocess, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
builds = [a.split("=", 1) for a in sys.argv[1:] if "=" in a]
flags = [a for a in sys.argv[1:] if "=" not in a]
args = dict(zip(flags[0::2], flags[1::2]))
ROUNDS, SIZE = int(args.get("-rounds", 8)), int(args.get("-size", 256)) << 20
PUSH = 256 << 10
BIN = os.path.join(HERE, "..", "bin")


def free_addr():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    addr = "127.0.0.1:%d" % s.getsockname()[1]
    s.close()
    return addr


def split(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def cpu(pid):  # utime + stime, seconds
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


class Target:
    """Accepts connections; on each, a request byte: 'U' reads SIZE bytes, then answers b"k";
    'D' writes SIZE bytes. Then it reads to the end."""

    def __init__(self):
        self.ln = socket.create_server(("127.0.0.1", 0))
        self.addr = "127.0.0.1:%d" % self.ln.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            c, _ = self.ln.accept()
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        op = c.recv(1)
        if op == b"D":
            send(c)
        buf, n = bytearray(1 << 20), 0
        while True:
            m = c.recv_into(buf)
            if m == 0:
                break
            n += m
            if op == b"U" and n == SIZE:
                c.sendall(b"k")  # everything arrived
        c.close()


def send(conn):
    data = os.urandom(PUSH)
    for _ in range(SIZE // PUSH):
        conn.sendall(data)


def receive(conn):
    buf, n = bytearray(1 << 20), 0
    while n < SIZE:
        m = conn.recv_into(buf, min(len(buf), SIZE - n))
        if m == 0:
            sys.exit("the download ended after %d of %d bytes" % (n, SIZE))
        n += m


def wait_listening(addr):
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(split(addr), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("nothing listens on " + addr)


def start_chain(name, target, bench, bindir=BIN):
    s, c = free_addr(), free_addr()
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socks = None
    if name in ("raw", "copy"):
        sp = subprocess.Popen([bench, "relay-" + name, "-listen", s, "-to", target], **quiet)
        cp = subprocess.Popen([bench, "relay-" + name, "-listen", c, "-to", s], **quiet)
    elif name == "gorilla":
        sp = subprocess.Popen([bench, "relay-gorilla-server", "-listen", s, "-to", target], **quiet)
        cp = subprocess.Popen([bench, "relay-gorilla-client", "-listen", c, "-url", "ws://%s/" % s], **quiet)
    else:
        sp = subprocess.Popen([os.path.join(bindir, "websocket-server"), "-listen", s, "-orport", target], **quiet)
        cp = subprocess.Popen([os.path.join(bindir, "websocket-client"), "-listen", c, "-url", "ws://%s/" % s], **quiet)
        socks = s
    wait_listening(s)
    wait_listening(c)
    return dict(name=name, entry=c, socks=socks, procs=[cp, sp])


def dial(ch):
    conn = socket.create_connection(split(ch["entry"]), timeout=60)
    if ch["socks"]:
        host, port = split(ch["socks"])
        conn.sendall(b"\x05\x01\x00")  # SOCKS5, one method: no authentication
        if conn.recv(2) != b"\x05\x00":
            sys.exit("SOCKS method refused")
        conn.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(host) + struct.pack(">H", port))
        reply = b""
        while len(reply) < 10:
            reply += conn.recv(10 - len(reply))
        if reply[1] != 0:
            sys.exit("SOCKS CONNECT refused: %d" % reply[1])
    return conn


def transfer(ch, direction):
    """Moves SIZE bytes one way through a new tunnel of ch: MB/s, and the relays' CPU s/GiB."""
    conn = dial(ch)
    c0 = sum(cpu(p.pid) for p in ch["procs"])
    t0 = time.perf_counter()
    if direction == "upload":
        conn.sendall(b"U")
        send(conn)
        if conn.recv(1) != b"k":
            sys.exit(ch["name"] + ": the target did not get everything")
    else:
        conn.sendall(b"D")
        receive(conn)
    elapsed = time.perf_counter() - t0
    c1 = sum(cpu(p.pid) for p in ch["procs"])
    conn.close()
    return SIZE / 1e6 / elapsed, (c1 - c0) / (SIZE / (1 << 30))


def paired(a, b):
    """The median over rounds of a ÷ b within a round, "n/a" where b reads 0 (a run too short
    for the clock ticks of CPU accounting)."""
    q = [x / y for x, y in zip(a, b) if y > 0]
    return "%.2fx" % statistics.median(q) if q else "n/a"


def fmt(xs, prec):
    return "%.*f (%.*f-%.*f)" % (prec, statistics.median(xs), prec, min(xs), prec, max(xs))


DIRECTIONS = ("upload", "download")


def main():
    bench = os.path.join(HERE, "bench-independent")
    subprocess.run(["go", "build", "-o", bench, "."], cwd=HERE, check=True)
    target = Target()
    chains = [start_chain(n, target.addr, bench) for n in ("raw", "copy", "gorilla", "ours")]
    chains += [start_chain(n, target.addr, bench, d) for n, d in builds]
    # res[direction][chain] = ([MB/s per round], [CPU s/GiB per round])
    res = {d: {ch["name"]: ([], []) for ch in chains} for d in DIRECTIONS}
    load0 = open("/proc/loadavg").read().split()[:3]
    try:
        for r in range(ROUNDS):
            for i in range(len(chains)):
                ch = chains[(i + r) % len(chains)]
                for d in DIRECTIONS:
                    mbps, cpg = transfer(ch, d)
                    res[d][ch["name"]][0].append(mbps)
                    res[d][ch["name"]][1].append(cpg)
    finally:
        for ch in chains:
            for p in ch["procs"]:
                p.kill()
        os.remove(bench)
    print("%d rounds of one %d MiB upload and one download in %d KiB pushes; load average %s before, %s after"
          % (ROUNDS, SIZE >> 20, PUSH >> 10, " ".join(load0), " ".join(open("/proc/loadavg").read().split()[:3])))
    for d in DIRECTIONS:
        print("\n" + d)
        for name, (mbps, cpg) in res[d].items():
            print("  %-8s %s MB/s   relays' CPU %s s/GiB" % (name, fmt(mbps, 0), fmt(cpg, 2)))
        for name in ["ours"] + [n for n, _ in builds]:
            for other in ("raw", "copy", "gorilla", "ours"):
                if other != name:
                    q = lambda k: paired(res[d][name][k], res[d][other][k])
                    print("  %s / %s (paired medians): throughput %s, CPU per GiB %s" % (name, other, q(0), q(1)))


main()
