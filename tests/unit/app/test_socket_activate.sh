#!/bin/sh
# myapp under systemd's own socket activation tool: a UNIX and a TCP socket
# passed as LISTEN_FDS, both served; SIGTERM exits 0. TAP output.
# usage: test_socket_activate.sh PATH/TO/myapp
set -eu

myapp=$(readlink -f "$1")
dir=$(mktemp -d /tmp/myapp-sa-XXXXXX)
port=$((20000 + $$ % 20000))
pid=
n=0
failed=0

cleanup() {
	if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
	if [ "$failed" -eq 0 ]; then rm -rf "$dir"; else echo "# log:"; sed "s/^/#   /" "$dir/log" 2>/dev/null || true; fi
}
trap cleanup EXIT INT TERM

check() {
	n=$((n + 1))
	desc=$1
	shift
	if "$@"; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		failed=$((failed + 1))
	fi
}

# A free port: systemd-socket-activate exits when it cannot bind; try others.
for attempt in 1 2 3 4 5; do
	rm -f "$dir/app.sock"
	systemd-socket-activate -l "$dir/app.sock" -l "127.0.0.1:$port" --fdname=public:tcp \
		-E STATE_DIRECTORY="$dir" -E ZDD_RELEASE=sa-test \
		"$myapp" --threads 2 2>"$dir/log" &
	pid=$!
	i=0
	while [ $i -lt 100 ] && kill -0 "$pid" 2>/dev/null && ! grep -q "Listening on 127" "$dir/log"; do
		sleep 0.05
		i=$((i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then break; fi
	echo "# attempt $attempt: port $port unusable"
	pid=
	port=$((port + 1))
done

# The first connection makes systemd-socket-activate exec myapp.
unix_health=$(curl -s --max-time 10 --unix-socket "$dir/app.sock" -o "$dir/h1" -w '%{http_code}' http://x/healthz || true)
check "healthz over the passed UNIX socket: $unix_health" [ "$unix_health" = 200 ]
check "healthz names the release" grep -q '"release":"sa-test"' "$dir/h1"
tcp_status=$(curl -s --max-time 10 -o "$dir/s1" -w '%{http_code}' "http://127.0.0.1:$port/api/status" || true)
check "status over the passed TCP socket: $tcp_status" [ "$tcp_status" = 200 ]
post=$(curl -s --max-time 10 --unix-socket "$dir/app.sock" -H 'Content-Type: application/json' \
	-d '{"text":"via socket activation"}' -o "$dir/p1" -w '%{http_code}' http://x/api/notes || true)
check "POST /api/notes: $post" [ "$post" = 201 ]
check "database in STATE_DIRECTORY" [ -f "$dir/notes.db" ]

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
check "SIGTERM: exit status $rc" [ "$rc" = 0 ]
check "log says drained" grep -q 'drained, exiting' "$dir/log"

# Bad option values: a clear message and exit status 2, nothing served.
for bad in 99 100001 -5 abc; do
	rc=0
	"$myapp" --cpu-slice-us "$bad" 2>"$dir/opt" || rc=$?
	check "--cpu-slice-us $bad refused with exit 2 ($rc)" [ "$rc" = 2 ]
	check "--cpu-slice-us $bad: the message names the range" grep -q 'wants 0 or 100..100000' "$dir/opt"
done

echo "1..$n"
echo "# $((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
