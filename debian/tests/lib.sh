# shellcheck shell=sh
# Assertions for the autopkgtest scripts: each prints one TAP-style line;
# the script fails (exit 1 at the end, via finish) if any assertion failed.
# Output goes to stdout: autopkgtest treats stderr as failure.
tests_run=0
tests_failed=0

pass() {
	tests_run=$((tests_run + 1))
	echo "ok $tests_run - $*"
}
fail() {
	tests_run=$((tests_run + 1))
	tests_failed=$((tests_failed + 1))
	echo "not ok $tests_run - $*"
}
# skip DESCRIPTION REASON: a check that cannot run here, said as such (make
# check fails on a skip not listed in tests/expected-skips).
skip() {
	tests_run=$((tests_run + 1))
	echo "ok $tests_run - $1 # SKIP $2"
}
# check DESCRIPTION CMD…: passes when CMD exits 0.
check() {
	what=$1
	shift
	if out=$("$@" 2>&1); then pass "$what"; else
		fail "$what"
		printf '%s\n' "$out" | sed 's/^/#   /' | tail -n 20
	fi
}
# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi
}
# check_match DESCRIPTION REGEX ACTUAL
check_match() {
	if printf '%s\n' "$3" | grep -Eq -- "$2"; then pass "$1"; else fail "$1: '$3' does not match /$2/"; fi
}
finish() {
	echo "1..$tests_run"
	echo "$((tests_run - tests_failed)) passed, $tests_failed failed"
	[ "$tests_failed" -eq 0 ]
}
# http URL [curl args…]: prints "STATUS BODY" of a request (no retries).
http() {
	url=$1
	shift
	curl -sS --max-time 10 -o /tmp/zdd-http-body -w '%{http_code}' "$@" "$url" 2>/dev/null || true
	printf ' '
	cat /tmp/zdd-http-body 2>/dev/null || true
}
# json_field FIELD: reads JSON on stdin, prints the field (python3 is in every
# testbed through git's and the app's test dependencies).
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1"; }
# http_eventually SECONDS URL [curl args…]: like http, retried until it
# answers 200 or SECONDS pass (an nginx reload takes effect asynchronously).
http_eventually() {
	limit=$1
	shift
	i=0
	while :; do
		r=$(http "$@")
		[ "${r%% *}" = 200 ] || [ "$i" -ge $((limit * 10)) ] && break
		i=$((i + 1))
		sleep 0.1
	done
	printf '%s' "$r"
}
