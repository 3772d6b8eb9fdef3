# shellcheck shell=sh
# shellcheck disable=SC2154,SC2034 # variables shared with tests/bench/inside, which sources this
# Helpers of the benchmark's scenario (tests/bench/inside), run as root
# inside the throw-away machine. They expect: $src (the source copy),
# $work (scratch, 0755, owned by deploy), $results (what goes back to the
# host), $load (the zdd-load binary).

log() { printf 'bench: %s\n' "$*" >&2; }
now_ms() { date +%s%3N; }

as_deploy() { (cd "$work" && runuser -u deploy -- "$@"); }

# kv FILE KEY VALUE: one "key=value" line of a meta file (read by report).
kv() { printf '%s=%s\n' "$2" "$3" >>"$1"; }

# json_get FILE EXPR: a value out of a JSON file (EXPR indexes `j`).
json_get() {
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# The revision the public socket serves (any instance answers).
live_revision() {
	curl -sS --max-time 5 --unix-socket /run/myapp.sock http://localhost/api/status |
		python3 -c 'import json,sys; print(json.load(sys.stdin).get("revision", ""))'
}

releases_count() { find /var/www/myapp/releases -mindepth 1 -maxdepth 1 | wc -l; }

# start_load NAME TARGET… : a bounded open-model client in the background,
# its files under $dir/NAME.*; the pid is added to $load_pids. The rate is
# $rate; with trace_requests=yes every request is logged too (NAME-requests.csv,
# for the report's phase breakdown). The schedule ends with stop_loads (SIGINT: the writes are still
# read back) or after 600 s at the latest.
load_pids=
start_load() {
	name=$1
	shift
	: >"$dir/windows.txt"
	[ "${trace_requests:-no}" != yes ] || set -- "$@" --requests "$dir/$name-requests.csv"
	[ -z "${CLIENT_SLICE_US:-}" ] || set -- "$@" --cpu-slice-us "$CLIENT_SLICE_US"
	"$load" "$@" --rate "$rate" --duration 600 --post-ratio 0.2 --verify \
		--windows "$dir/windows.txt" --timeline "$dir/$name.csv" --json "$dir/$name.json" \
		>"$dir/$name.out" 2>&1 &
	load_pids="$load_pids $!"
}
stop_loads() {
	# shellcheck disable=SC2086 # a list of pids
	[ -z "$load_pids" ] || kill -INT $load_pids 2>/dev/null || true
	for pid in $load_pids; do wait "$pid" || true; done
	load_pids=
}

# window T0 LABEL: the span from T0 to now is a deploy window of the load.
window() { echo "$1 $(now_ms) $2" >>"$dir/windows.txt"; }

# Peak RSS of the app's processes, sampled while a series runs.
rss_pid=
rss_start() { # rss_start UNIT_PATTERN…
	python3 "$src/tests/bench/rss-sample" "$dir/rss.json" "$@" &
	rss_pid=$!
}
rss_stop() {
	[ -z "$rss_pid" ] || { kill -TERM "$rss_pid" 2>/dev/null || true; wait "$rss_pid" || true; }
	rss_pid=
}

# systemd's own figure where it has one (MemoryPeak=, systemd >= 256 on a
# cgroup v2 memory controller); empty otherwise.
memory_peak() {
	v=$(systemctl show -p MemoryPeak --value "$1" 2>/dev/null || true)
	case "$v" in '' | *[!0-9]*) echo "" ;; *) echo "$v" ;; esac
}

cleanup_bench() {
	stop_loads
	rss_stop
}

# What explains failures: nginx's error log and the app's journal from
# mark_logs on, saved into $dir by save_logs.
mark_logs() {
	log_since=$(date +%s)
	log_nginx_lines=$(wc -l </var/log/nginx/error.log 2>/dev/null || echo 0)
}
save_logs() {
	tail -n +"$((log_nginx_lines + 1))" /var/log/nginx/error.log >"$dir/nginx-error.log" 2>/dev/null || true
	journalctl -q --no-pager --since "@$log_since" -u 'myapp*' -u bench-bind.service >"$dir/journal.txt" 2>&1 || true
}
