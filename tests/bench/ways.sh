# shellcheck shell=sh
# shellcheck disable=SC2154,SC2034 # variables shared with tests/bench/inside, which sources this
# The benchmark's three ways of putting a release live, each a series of
# $DEPLOYS consecutive deploys under a constant load (sourced by inside).
#   zdd          git push of an empty commit: our handover
#   sock-restart socket activation + plain `systemctl restart myapp.service`
#   bind-restart the app binds 127.0.0.1:8090 itself + `systemctl restart`
#   zdd-restart  `myapp-zdd restart`: our handover without a build (the
#                same handover as zdd, minus git and the compiler competing
#                for the 2 cores: it tells the two costs apart)

BIND_UNIT=bench-bind.service
BIND_ADDR=127.0.0.1:8090

# One deploy of each way; returns the deploy command's status.
deploy_zdd() {
	as_deploy git -C "$work/app" commit -q --allow-empty -m "bench deploy $1" &&
		as_deploy git -C "$work/app" push -q origin HEAD:main >>"$dir/deploys.log" 2>&1
}
deploy_zdd_restart() { myapp-zdd restart >>"$dir/deploys.log" 2>&1; }
deploy_sock_restart() { systemctl restart myapp.service >>"$dir/deploys.log" 2>&1; }
deploy_bind_restart() { systemctl restart "$BIND_UNIT" >>"$dir/deploys.log" 2>&1; }

# The guide's first way: the app binds its own port (no systemd socket),
# Type=notify so `systemctl restart` returns once the new one is ready.
bind_unit_install() {
	mkdir -p /var/lib/bench-bind
	cat >/run/systemd/system/$BIND_UNIT <<-EOF
		[Unit]
		Description=myapp binding its own port (benchmark: bind + restart)
		# as myapp.service: 20 deploys in 30 s must not hit the start rate limit
		StartLimitIntervalSec=0
		[Service]
		Type=notify
		ExecStart=/usr/lib/myapp-zdd/myapp --listen $BIND_ADDR --state-dir /var/lib/bench-bind
		WorkingDirectory=/var/lib/bench-bind
		TimeoutStopSec=30
	EOF
	systemctl daemon-reload
	systemctl start $BIND_UNIT
}
bind_unit_remove() {
	systemctl stop $BIND_UNIT || true
	rm -f /run/systemd/system/$BIND_UNIT
	systemctl daemon-reload
}

# series WAY PATH RATE: DEPLOYS deploys of WAY under RATE req/s on PATH
# (nginx | socket | port); results in $results/series/WAY-PATH-RATE/.
series() {
	way=$1 path=$2 rate=$3
	dir=$results/series/$way-$path-$rate
	mkdir -p "$dir"
	: >"$dir/meta.txt"
	kv "$dir/meta.txt" way "$way"
	kv "$dir/meta.txt" path "$path"
	kv "$dir/meta.txt" rate "$rate"
	kv "$dir/meta.txt" deploys "$DEPLOYS"
	case "$way" in
	zdd | zdd-restart | sock-restart) units="myapp.service myapp@*.service" ;;
	bind-restart) units=$BIND_UNIT ;;
	esac
	case "$path" in
	nginx) target="--tcp 127.0.0.1:80 --host localhost" ;;
	socket) target="--unix /run/myapp.sock" ;;
	port) target="--tcp $BIND_ADDR --host localhost" ;;
	esac
	# our handover: every request and every deploy's step times are kept, so
	# the report can tell which step the slow requests fall in
	case "$way" in
	zdd | zdd-restart) trace_requests=yes ;;
	*) trace_requests=no ;;
	esac
	log "series $way via $path at $rate req/s: $DEPLOYS deploys"
	mark_logs
	# shellcheck disable=SC2086 # unit patterns and options, one a word
	rss_start $units
	# shellcheck disable=SC2086
	start_load load $target
	sleep "$LEAD"
	failed=0 i=1
	while [ "$i" -le "$DEPLOYS" ]; do
		t0=$(now_ms)
		case "$way" in
		zdd) deploy_zdd "$i" || failed=$((failed + 1)) ;;
		zdd-restart) deploy_zdd_restart || failed=$((failed + 1)) ;;
		sock-restart) deploy_sock_restart || failed=$((failed + 1)) ;;
		bind-restart) deploy_bind_restart || failed=$((failed + 1)) ;;
		esac
		window "$t0" "deploy-$i"
		[ "$trace_requests" != yes ] || tail -n 1 /var/www/myapp/deploys.jsonl >>"$dir/deploys.jsonl"
		sleep "$GAP"
		i=$((i + 1))
	done
	sleep "$LEAD"
	stop_loads
	rss_stop
	save_logs
	kv "$dir/meta.txt" deploys_failed "$failed"
	case "$way" in
	bind-restart) kv "$dir/meta.txt" memory_peak "$(memory_peak $BIND_UNIT)" ;;
	*) kv "$dir/meta.txt" memory_peak "$(memory_peak myapp.service)" ;;
	esac
	log "  $(grep -E '^requests' "$dir/load.out" || echo 'no load figures')"
}

ALL_SERIES="zdd-nginx zdd-socket zdd-restart-socket sock-restart-nginx sock-restart-socket bind-restart-port"

# wanted WAY-PATH: in $WAYS (default: all of them)
wanted() {
	case " ${WAYS:-$ALL_SERIES} " in *" $1 "*) return 0 ;; esac
	return 1
}

run_ways() {
	for rate in $RATES; do
		for s in zdd-nginx zdd-socket zdd-restart-socket sock-restart-nginx sock-restart-socket; do
			wanted "$s" || continue
			series "${s%-*}" "${s##*-}" "$rate"
		done
		if wanted bind-restart-port; then
			bind_unit_install
			series bind-restart port "$rate"
			bind_unit_remove
		fi
	done
}
