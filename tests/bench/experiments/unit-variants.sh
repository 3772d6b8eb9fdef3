#!/bin/sh
# Experiment (docs/benchmark.md, "Reading"): p99 on the socket at 5,000 req/s
# while systemd starts and stops a side instance, or `myapp-zdd restart`
# runs, 10 times in 12 s, under variants of the units (drop-ins in /run:
# Nice=-10; no private network; no private users/IPC/network). Run as root
# from the source tree inside the testbed where the package is installed:
#   tests/machines/testbed/testbed exec bookworm --src . --deb build/myapp-zdd_*_amd64.deb \
#       -- sh tests/bench/experiments/unit-variants.sh
set -eu
src=$(pwd)
make -s -C src/load >/dev/null
load=$src/src/load/zdd-load
myapp-zdd restart >/dev/null 2>&1
variant() {
	rm -rf /run/systemd/system/myapp.service.d /run/systemd/system/myapp@.service.d
	if [ -n "$1" ]; then
		for u in myapp.service.d myapp@.service.d; do
			mkdir -p /run/systemd/system/$u
			printf '[Service]\n%s\n' "$1" | tr ';' '\n' >/run/systemd/system/$u/exp.conf
		done
	fi
	systemctl daemon-reload
	myapp-zdd restart >/dev/null 2>&1
}
run() { # NAME ACTION
	out=/tmp/exp-$1.json
	"$load" --unix /run/myapp.sock --rate 5000 --duration 12 --post-ratio 0.2 --json "$out" >/dev/null &
	lp=$!
	sleep 1
	i=0
	while [ $i -lt 10 ]; do
		case "$2" in
		side) id=$(basename "$(readlink /var/www/myapp/current)"); systemctl start "myapp@$id.service"; sleep 0.3; systemctl stop "myapp@$id.service" "myapp-probe@$id.socket" 2>/dev/null ;;
		restart) myapp-zdd restart >/dev/null 2>&1 ;;
		idle) ;;
		esac
		sleep 0.7
		i=$((i + 1))
	done
	wait $lp
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); w=j["whole"]; print("%-28s failed %d p50 %.2f p99 %.2f max %.1f" % (sys.argv[2], j["failed"], w["p50_ms"], w["p99_ms"], w["max_ms"]))' "$out" "$1"
}
for _ in 1 2; do
variant ""
run "default-idle" idle
run "default-side" side
run "default-restart" restart
variant "Nice=-10"
run "nice-10-side" side
run "nice-10-restart" restart
variant "PrivateNetwork=no;IPAddressDeny="
run "nonet-side" side
run "nonet-restart" restart
variant "PrivateUsers=no;PrivateIPC=no;PrivateNetwork=no;IPAddressDeny="
run "nousers-nonet-side" side
done
variant ""
