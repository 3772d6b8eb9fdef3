#!/usr/bin/python3
"""Experiment (docs/benchmark.md, "Reading"): two myapp instances on one
inherited UNIX socket, no systemd: latency at 5,000 req/s (20 % POSTs) with
one instance (one), with a second serving beside it for 16 s (overlap), or
with a new instance started and the old one stopped every 0.6 s (cycle).
Usage: overlap.py src/app/myapp src/load/zdd-load one|overlap|cycle [RATE]"""
import csv, json, os, socket, subprocess, sys, tempfile, time
APP, LOAD, MODE = sys.argv[1], sys.argv[2], sys.argv[3]  # one | overlap | cycle
RATE = sys.argv[4] if len(sys.argv) > 4 else "5000"
d = tempfile.mkdtemp(prefix="ovl.", dir="/var/tmp")
path = os.path.join(d, "s.sock")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(path); s.listen(4096); s.setblocking(False)
def spawn():
    fd = s.fileno()
    return subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ exec "$0" --state-dir "$1"', APP, d],
                            preexec_fn=lambda: os.dup2(fd, 3), pass_fds=(fd,),
                            env=dict(os.environ, LISTEN_FDS="1"), stderr=subprocess.DEVNULL)
a = spawn(); time.sleep(0.5)
load = subprocess.Popen([LOAD, "--unix", path, "--rate", RATE, "--duration", "20", "--post-ratio", "0.2",
                         "--json", d + "/l.json", "--requests", d + "/r.csv"], stdout=subprocess.DEVNULL)
t_end = time.time() + 20
if MODE == "overlap":
    time.sleep(2); b = spawn(); time.sleep(16); b.terminate(); b.wait()
elif MODE == "cycle":
    time.sleep(2)
    while time.time() < t_end - 2:
        b = spawn(); time.sleep(0.3); a.terminate(); a.wait(); time.sleep(0.3); a = b
load.wait()
j = json.load(open(d + "/l.json"))
print(MODE, APP, "failed", j["failed"])
post, get = [], []
for r in csv.DictReader(open(d + "/r.csv")):
    (post if r["post"] == "1" else get).append(int(r["latency_us"]))
for n, v in (("post", post), ("get", get)):
    v.sort()
    print("  %s n=%d p50 %.2f p99 %.2f p99.9 %.2f max %.1f" % (n, len(v), v[len(v)//2]/1e3, v[int(len(v)*.99)]/1e3,
                                                             v[int(len(v)*.999)]/1e3, v[-1]/1e3))
a.terminate(); a.wait()
subprocess.run(["rm", "-rf", d])
