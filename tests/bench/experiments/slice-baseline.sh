#!/bin/sh
# Experiment (docs/benchmark.md, "Builds under load", issue 14): is the
# higher idle p99 after the upgrade to the slice layout (the app in
# myapp.slice, nginx in system.slice) the slice, or something else? Idle
# load through nginx, no deploys, the app in myapp.slice and then (a
# runtime drop-in) in system.slice, alternately, and once more after a
# push (the build unit ran), AFTER_RUNS times in a row. Run as root from the source tree inside the
# testbed where the package is installed:
#   tests/machines/testbed/testbed exec bookworm --src . --deb build/myapp-zdd_*_amd64.deb \
#       -- sh tests/bench/experiments/slice-baseline.sh
set -eu
src=$(pwd)
make -s -C src/load >/dev/null
load=$src/src/load/zdd-load
rates=${RATES:-2000 5000}
secs=${SECS:-8}
rounds=${ROUNDS:-3}

slice() { # slice NAME: the app's units in NAME (myapp.slice: as shipped)
	for u in myapp.service.d myapp@.service.d; do
		rm -f /run/systemd/system/$u/zz-slice.conf
		if [ "$1" != myapp.slice ]; then
			mkdir -p /run/systemd/system/$u
			printf '[Service]\nSlice=%s\n' "$1" >/run/systemd/system/$u/zz-slice.conf
		fi
	done
	systemctl daemon-reload
	# a stop and start (a restart keeps the cgroup)
	systemctl stop myapp.service
	systemctl start myapp.service
	sleep 1
}
run() { # run LABEL RATE
	out=/tmp/slice-exp-$1-$2.json
	"$load" --tcp 127.0.0.1:80 --host localhost --rate "$2" --duration "$secs" \
		--post-ratio 0.2 --json "$out" >/dev/null 2>&1 || true
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); w=j["whole"]
print("%-14s %5s req/s  failed %d  p50 %.2f  p99 %.2f  max %.1f ms" % (sys.argv[2], sys.argv[3], j["failed"], w["p50_ms"], w["p99_ms"], w["max_ms"]))' \
		"$out" "$1" "$2"
}
echo "cgroup of myapp.service: $(sed -n 's/^[0-9]*:\(cpu,cpuacct\|\):\(.*\)/\1 \2/p' "/proc/$(systemctl show -p MainPID --value myapp.service)/cgroup" | tr '\n' ' ')"
echo "controllers: $(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null || echo 'v1/hybrid:'; find /sys/fs/cgroup -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null)"
i=1
while [ "$i" -le "$rounds" ]; do
	for s in myapp.slice system.slice; do
		slice "$s"
		echo "round $i: app in $(systemctl show -p Slice --value myapp.service)"
		for r in $rates; do run "$s" "$r"; done
	done
	i=$((i + 1))
done
slice myapp.slice
work=$(mktemp -d /var/tmp/slice-exp.XXXXXX)
chown deploy:deploy "$work"
runuser -u deploy -- git clone -q /var/repo/myapp.git "$work/app"
runuser -u deploy -- git -C "$work/app" -c user.email=e@localhost -c user.name=e \
	commit -q --allow-empty -m "slice experiment"
runuser -u deploy -- git -C "$work/app" push -q origin HEAD:main >/dev/null 2>&1
sleep 2
echo "after a push: app in $(systemctl show -p Slice --value myapp.service); $secs s runs one after another"
n=1
while [ "$n" -le "${AFTER_RUNS:-1}" ]; do
	for r in $rates; do run "after-push-$n" "$r"; done
	n=$((n + 1))
done
ps -eo pcpu,cls,ni,comm --sort=-pcpu | head -8
