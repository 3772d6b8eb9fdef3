#!/bin/sh
# Experiment (docs/architecture.md): the app's GET and POST p99 at 5,000 req/s
# on the socket while background work runs at the build's priority: two busy
# loops, gcc in a loop, plain disk writes, fsync'd writes. In the testbed:
#   tests/machines/testbed/testbed exec bookworm --src . --deb build/myapp-zdd_*_amd64.deb \
#       -- sh tests/bench/experiments/background-work.sh
set -eu
src=$(pwd)
make -s -C src/load >/dev/null
load=$src/src/load/zdd-load
myapp-zdd restart >/dev/null 2>&1
# as the engine runs a build: SCHED_IDLE, nice 19, best-effort I/O 7
bg() { nice -n 19 chrt -i 0 ionice -c2 -n7 "$@"; }
run() { # NAME CMD...
	name=$1; shift
	"$load" --unix /run/myapp.sock --rate 5000 --duration 10 --post-ratio 0.2 --json /tmp/h.json --requests /tmp/h.csv >/dev/null &
	lp=$!
	sleep 1
	bg "$@" &
	sleep 8
	pkill -f "hogmark" 2>/dev/null || true
	wait $lp
	python3 - "$name" <<'PY'
import csv, sys
g, p = [], []
for r in csv.DictReader(open("/tmp/h.csv")):
    (p if r["post"] == "1" else g).append(int(r["latency_us"]) / 1000)
out = []
for n, v in (("get", g), ("post", p)):
    v.sort(); out.append("%s p99 %.2f p99.9 %.2f max %.1f" % (n, v[int(len(v) * .99)], v[int(len(v) * .999)], v[-1]))
print("%-10s %s" % (sys.argv[1], " | ".join(out)))
PY
}
cat > /tmp/cpu.sh <<'X'
# hogmark
while :; do :; done
X
cat > /tmp/gcc.sh <<X
# hogmark
cd /tmp; while :; do cc -O2 -c $src/src/app/server.c \$(pkg-config --cflags libmicrohttpd) -o /tmp/x.o; done
X
cat > /tmp/disk.sh <<'X'
# hogmark
while :; do dd if=/dev/zero of=/var/tmp/hog.bin bs=1M count=64 status=none; rm -f /var/tmp/hog.bin; done
X
cat > /tmp/sync.sh <<'X'
# hogmark
while :; do dd if=/dev/zero of=/var/tmp/hog.bin bs=1M count=16 conv=fsync status=none; done
X
for _ in 1 2; do
run none sleep 9
run cpu2 sh -c 'sh /tmp/cpu.sh hogmark & sh /tmp/cpu.sh hogmark & wait'
run gcc sh /tmp/gcc.sh hogmark
run disk sh /tmp/disk.sh hogmark
run disksync sh /tmp/sync.sh hogmark
done
