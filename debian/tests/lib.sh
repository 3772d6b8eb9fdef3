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
	# What the machine saw, for the one who reads a failure afterwards: the
	# app units' journal and what ran, in the artifacts (CI keeps them).
	if [ "$tests_failed" -ne 0 ] && [ -n "${AUTOPKGTEST_ARTIFACTS:-}" ]; then
		journalctl --no-pager -o short-precise -u 'myapp*' -u nginx.service \
			>"$AUTOPKGTEST_ARTIFACTS/journal-$(basename "$0").txt" 2>&1 || true
		ps -eo pid,user,pcpu,time,rss,args --sort=-time \
			>"$AUTOPKGTEST_ARTIFACTS/ps-$(basename "$0").txt" 2>&1 || true
	fi
	[ "$tests_failed" -eq 0 ]
}
# http URL [curl args…]: prints "STATUS BODY" of a request (no retries). The
# body goes to a file of this call's own, so a request that got no answer
# prints "000 " with nothing after it, never an earlier answer's body.
http() {
	http_url=$1
	shift
	http_body=$(mktemp) || {
		printf '000 '
		return 0
	}
	curl -sS --max-time 10 -o "$http_body" -w '%{http_code}' "$@" "$http_url" 2>/dev/null || true
	printf ' '
	cat "$http_body" 2>/dev/null || true
	rm -f "$http_body"
}
# json_field FIELD: reads JSON on stdin, prints the field (python3 is in every
# testbed through git's and the app's test dependencies).
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1"; }
# http_field FIELD URL [curl args…]: FIELD of the JSON body of a 200 (or,
# for a POST, 201) answer;
# any other answer prints "HTTP STATUS" (000: none), which equals no value a
# test expects, so a refused request never passes for an earlier answer.
http_field() {
	hf_field=$1
	shift
	hf_answer=$(http "$@")
	case ${hf_answer%% *} in
	200 | 201) ;;
	*)
		echo "HTTP ${hf_answer%% *}"
		return 0
		;;
	esac
	if ! printf '%s' "${hf_answer#* }" | json_field "$hf_field" 2>/dev/null; then
		echo "HTTP 200 without a JSON body"
	fi
}
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

# set_server_conf KEY=VALUE…: an admin's edit of /etc/myapp-zdd/server.conf
# (the file wins over debconf's stored answers; a reconfigure applies it).
set_server_conf() {
	for kv in "$@"; do
		sed -i "/^${kv%%=*}=/d" /etc/myapp-zdd/server.conf
		printf '%s\n' "$kv" >>/etc/myapp-zdd/server.conf
	done
}
# test_ca KEY CERT CN: a CA of the test's own, for two days (with the
# extensions a strict verifier wants: Python 3.13's default one does).
test_ca() {
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$3" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		-keyout "$1" -out "$2" 2>/dev/null
}
# test_cert CA_KEY CA_CERT KEY CERT SAN: a server certificate that CA signs,
# for SAN (subjectAltName, e.g. DNS:zdd.test,IP:127.0.0.1), for two days.
test_cert() {
	tc_dir=$(mktemp -d)
	openssl req -newkey rsa:2048 -nodes -subj /CN=zdd-test -keyout "$3" -out "$tc_dir/csr" 2>/dev/null
	printf '%s\n' "subjectAltName=$5" basicConstraints=CA:FALSE \
		keyUsage=critical,digitalSignature,keyEncipherment extendedKeyUsage=serverAuth \
		authorityKeyIdentifier=keyid,issuer subjectKeyIdentifier=hash >"$tc_dir/ext"
	openssl x509 -req -in "$tc_dir/csr" -CA "$2" -CAkey "$1" -set_serial "0x$(openssl rand -hex 8)" \
		-days 2 -extfile "$tc_dir/ext" -out "$4" 2>/dev/null
	tc_rc=$?
	rm -rf "$tc_dir"
	return $tc_rc
}

# check_load NAME JSON STATUS [WINDOWS]: the verdict on one zdd-load run,
# started with --verify --fail-on-error --json JSON (and --windows WINDOWS);
# STATUS is the client's exit status as `wait` returned it. Asserts: it
# exited 0 (1: it saw a failure, 2: it could not run, >128: a signal killed
# it before its report), it sent requests and none failed, it wrote (> 0
# acknowledged) and read every acknowledged write back (none lost or
# unverifiable), no 2xx POST came without an id; with WINDOWS, every window
# of the file is in the report with requests in it, and the load's schedule
# ran past the end of the last one.
check_load() {
	cl_name=$1
	check_eq "$cl_name: the load client exited 0" 0 "$3"
	cl_out=$(python3 - "$2" "${4:-}" 2>&1 <<'PY'
import json, sys

path, windows = sys.argv[1], sys.argv[2]


def say(cond, what):
    print("%s\t%s" % ("ok" if cond else "not ok", what))


try:
    with open(path) as f:
        r = json.load(f)
    w = r["writes"]
    sent, failed = r["sent"], r["failed"]
except (OSError, ValueError, KeyError, TypeError) as e:
    say(False, "no zdd-load report in %s (%s)" % (path, e))
    sys.exit(0)
say(sent > 0, "requests sent: %d" % sent)
why = ", ".join(["%s %d" % kv for kv in r.get("failures", {}).items() if kv[1]]
                + ["HTTP %s: %d" % kv for kv in r.get("statuses", {}).items() if not kv[0].startswith("2")])
say(failed == 0, "no failed request (%d of %d failed%s)" % (failed, sent, ": " + why if why else ""))
ack = w.get("acknowledged", 0)
say(ack > 0, "writes acknowledged: %d" % ack)
verified = w.get("verified", "none: not read back (no --verify)")
say(verified == ack, "every acknowledged write read back: %s verified of %d" % (verified, ack))
say(w.get("lost") == 0 and w.get("unverifiable") == 0,
    "no acknowledged write lost (%s) or unverifiable (%s)" % (w.get("lost"), w.get("unverifiable")))
say(w.get("posts_2xx_without_id") == 0, "no 2xx POST without an id (%s)" % w.get("posts_2xx_without_id"))
if windows:
    try:
        with open(windows) as f:
            lines = [s for s in (s.strip() for s in f) if s and not s.startswith("#")]
    except OSError as e:
        say(False, "cannot read the windows file %s (%s)" % (windows, e))
        sys.exit(0)
    got = r.get("windows", [])
    say(lines and len(got) == len(lines), "the report has every window: %d of %d" % (len(got), len(lines)))
    empty = [x.get("label", "?") for x in got if x.get("count", 0) <= 0]
    fewest = min(got, key=lambda x: x.get("count", 0)) if got else {}
    say(got and not empty, "every window saw requests (%s)" % (
        "none in: " + ", ".join(empty) if empty
        else "fewest: %s in '%s'" % (fewest.get("count"), fewest.get("label"))))
    rate = r.get("config", {}).get("rate") or 0
    end = r.get("start_epoch_ms", 0) + (sent * 1000.0 / rate if rate else 0)
    last = max((x.get("end_epoch_ms", 0) for x in got), default=0)
    say(got and end >= last, "the load ran through the last window (its schedule ended %.1f s %s it ended)"
        % (abs(end - last) / 1000.0, "after" if end >= last else "BEFORE"))
PY
	) || cl_out="not ok	cannot check $2: $cl_out"
	while IFS='	' read -r cl_verdict cl_what; do
		case $cl_verdict in
		ok) pass "$cl_name: $cl_what" ;;
		*) fail "$cl_name: $cl_what" ;;
		esac
	done <<EOF
$cl_out
EOF
}
