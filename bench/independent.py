#!/usr/bin/env python3
"""An independent check of the harness's figures: its own load generator, sink, timing and CPU
accounting (utime+stime from /proc/PID/stat), a different push size (256 KiB) and one direction
(uploads), as a reader of doc/PERFORMANCE.md might measure.

Usage (from bench/, after make build):
    python3 independent.py [-rounds 8] [-size 256] [NAME=BINDIR ...]

Each round uploads SIZE MiB through each chain in turn (the order rotating each round): the raw
chain (two `bench relay-raw`), the gorilla chain, ours (websocket-client over SOCKS5, then
websocket-server, from ../bin) and ours built elsewhere, named NAME, for each NAME=BINDIR (to
compare builds). It prints, per chain, the median (min-max) MB/s and relays' CPU s/GiB, and the
paired medians of each of our chains ÷ raw, ÷ gorilla and ÷ ours. Loopback only.
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


class Sink:
    """Accepts connections and reads each to its end, counting bytes."""

    def __init__(self):
        self.ln = socket.create_server(("127.0.0.1", 0))
        self.addr = "127.0.0.1:%d" % self.ln.getsockname()[1]
        self.done = {}
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            c, _ = self.ln.accept()
            threading.Thread(target=self.drain, args=(c,), daemon=True).start()

    def drain(self, c):
        buf, n = bytearray(1 << 20), 0
        while True:
            m = c.recv_into(buf)
            if m == 0:
                break
            n += m
            if n >= SIZE:
                c.sendall(b"k")  # everything arrived
        c.close()


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
    if name == "raw":
        sp = subprocess.Popen([bench, "relay-raw", "-listen", s, "-to", target], **quiet)
        cp = subprocess.Popen([bench, "relay-raw", "-listen", c, "-to", s], **quiet)
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


def upload(ch):
    conn = dial(ch)
    data = os.urandom(PUSH)
    c0 = sum(cpu(p.pid) for p in ch["procs"])
    t0 = time.perf_counter()
    for _ in range(SIZE // PUSH):
        conn.sendall(data)
    if conn.recv(1) != b"k":
        sys.exit(ch["name"] + ": the sink did not get everything")
    elapsed = time.perf_counter() - t0
    c1 = sum(cpu(p.pid) for p in ch["procs"])
    conn.close()
    return SIZE / 1e6 / elapsed, (c1 - c0) / (SIZE / (1 << 30))


def fmt(xs, prec):
    return "%.*f (%.*f-%.*f)" % (prec, statistics.median(xs), prec, min(xs), prec, max(xs))


def main():
    bench = os.path.join(HERE, "bench-independent")
    subprocess.run(["go", "build", "-o", bench, "."], cwd=HERE, check=True)
    sink = Sink()
    chains = [start_chain(n, sink.addr, bench) for n in ("raw", "gorilla", "ours")]
    chains += [start_chain(n, sink.addr, bench, d) for n, d in builds]
    res = {ch["name"]: ([], []) for ch in chains}
    load0 = open("/proc/loadavg").read().split()[:3]
    try:
        for r in range(ROUNDS):
            for i in range(len(chains)):
                ch = chains[(i + r) % len(chains)]
                mbps, cpg = upload(ch)
                res[ch["name"]][0].append(mbps)
                res[ch["name"]][1].append(cpg)
    finally:
        for ch in chains:
            for p in ch["procs"]:
                p.kill()
        os.remove(bench)
    print("%d rounds of one %d MiB upload in %d KiB pushes; load average %s before, %s after"
          % (ROUNDS, SIZE >> 20, PUSH >> 10, " ".join(load0), " ".join(open("/proc/loadavg").read().split()[:3])))
    for name, (mbps, cpg) in res.items():
        print("%-8s %s MB/s   relays' CPU %s s/GiB" % (name, fmt(mbps, 0), fmt(cpg, 2)))
    for name in ["ours"] + [n for n, _ in builds]:
        for other in ("raw", "gorilla", "ours"):
            if other != name:
                q = lambda k: statistics.median(a / b for a, b in zip(res[name][k], res[other][k]))
                print("%s / %s (paired medians): throughput %.2fx, CPU per GiB %.2fx" % (name, other, q(0), q(1)))


main()
