#!/usr/bin/env python3
"""perftop.py PERF_DATA BINARY [N]: the top N functions (self time) of a perf recording of a Go
program, and the kernel's share. perf on this machine cannot read Go's symbols: they are
resolved with `go tool addr2line`; kernel symbols are perf's."""
import collections, subprocess, sys

data, binary = sys.argv[1], sys.argv[2]
top = int(sys.argv[3]) if len(sys.argv) > 3 else 12
out = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym,dso", "-G"],
                     capture_output=True, text=True).stdout
count, user = collections.Counter(), []
for line in filter(None, map(str.strip, out.splitlines())):
    ip, _, rest = line.partition(" ")
    if "kernel" in rest:
        count["[k] " + rest.split(" (")[0]] += 1
    else:
        v = int(ip, 16)
        user.append(hex(v + 0x400000 if v < 0x400000 else v))  # offsets into the text segment
names = subprocess.run(["go", "tool", "addr2line", binary], input="\n".join(user) + "\n",
                       capture_output=True, text=True).stdout.splitlines()[0::2]
count.update(n.replace("gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/", "")
             for n in names)
total = sum(count.values())
kernel = sum(v for k, v in count.items() if k.startswith("[k]"))
print("%d samples, kernel %.0f%%, user %.0f%%" % (total, 100 * kernel / total, 100 - 100 * kernel / total))
for name, n in count.most_common(top):
    print("%5.1f%% %s" % (100 * n / total, name))
