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
#   express-zdd, express-sock-restart
#                zdd and sock-restart with the guide's own app live
#                (examples/node-express), at $EXPRESS_RATE only: the
#                comparison the guide made, with its app

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
# Node sends no READY=1: the launcher declares it started before the exec,
# so `systemctl restart` returns before Node listens. The deploy (the
# window) lasts until the app answers again, as the C app's restart does
# (Type=notify): otherwise the outage would fall outside the windows.
deploy_express_restart() {
	deploy_sock_restart || return 1
	n=0
	until curl -fsS -o /dev/null --max-time 5 --unix-socket /run/myapp.sock http://localhost/healthz 2>>"$dir/deploys.log"; do
		n=$((n + 1))
		[ "$n" -lt 20 ] || return 1
		sleep 0.1
	done
}

# EXPRESS_SRC: the app pushed for these series (default examples/node-express;
# another directory for an experiment on the app's own stop, for instance).
# Node at 5,000 req/s on 2 cores would measure Node's throughput, not the
# deploy: the Express rows run at this one rate whatever RATES says.
EXPRESS_RATE=${EXPRESS_RATE:-500}
EXPRESS_SERIES="express-zdd-nginx express-zdd-socket express-sock-restart-nginx express-sock-restart-socket"
conf=/etc/myapp-zdd/myapp-zdd.conf

# grant LIST: SANDBOX_GRANTS=LIST applied as an admin applies an edit (as
# debian/tests/examples does: the file wins over debconf's stored answer).
grant() {
	sed -i '/^SANDBOX_GRANTS=/d' "$conf"
	echo "SANDBOX_GRANTS=$1" >>"$conf"
	dpkg-reconfigure -f noninteractive myapp-zdd
}
# The app the public socket serves ("" when it does not answer).
live_app() {
	curl -sS --max-time 5 --unix-socket /run/myapp.sock http://localhost/api/status 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin).get("app", ""))' 2>/dev/null || true
}
# set_tree REV_OR_DIR: the work tree becomes examples/NAME (a directory) or
# the tree of a revision, committed and pushed, not under load (the change
# of app is not what is measured). Output in $results/express-setup.log.
set_tree() {
	as_deploy git -C "$work/app" rm -q -r --ignore-unmatch . &&
		if [ -d "$1" ]; then
			cp -a "$1/." "$work/app/" && chown -R deploy:deploy "$work/app"
		else
			as_deploy git -C "$work/app" checkout -q "$1" -- .
		fi &&
		as_deploy git -C "$work/app" add -A &&
		as_deploy git -C "$work/app" commit -q --allow-empty -m "bench: tree of $1" &&
		as_deploy git -C "$work/app" push -q origin HEAD:main >>"$results/express-setup.log" 2>&1
}
# express_up: JIT granted (V8 needs it; refused otherwise) and the Express
# app live; fails when it is not what answers.
express_up() {
	c_tree=$(as_deploy git -C "$work/app" rev-parse HEAD)
	{ grant jit >>"$results/express-setup.log" 2>&1 &&
		set_tree "${EXPRESS_SRC:-$src/examples/node-express}" &&
		[ "$(live_app)" = node-express ]; } || return 1
}
# express_down: the reference app live again and nothing granted, as the
# drills (and the machine's defaults) expect.
express_down() {
	set_tree "$c_tree" || log "could not push the reference app back (express-setup.log)"
	grant "" >>"$results/express-setup.log" 2>&1 || log "could not withdraw SANDBOX_GRANTS=jit"
	[ "$(live_app)" != node-express ] || log "the Express app is still live after express_down"
}
# series_not_run WAY PATH RATE WHY: a series that could not start leaves a
# meta.txt that the report turns into a FAIL (no figures), never a gap.
series_not_run() {
	d=$results/series/$1-$2-$3
	mkdir -p "$d"
	: >"$d/meta.txt"
	kv "$d/meta.txt" way "$1"
	kv "$d/meta.txt" path "$2"
	kv "$d/meta.txt" rate "$3"
	kv "$d/meta.txt" deploys "$DEPLOYS"
	kv "$d/meta.txt" deploys_failed "$DEPLOYS"
	kv "$d/meta.txt" not_run "$4"
}

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
	# what answers (the report checks the Express rows measured Express)
	kv "$dir/meta.txt" app_before "$(live_app)"
	case "$way" in
	zdd | zdd-restart | sock-restart | express-*) units="myapp.service myapp@*.service" ;;
	bind-restart) units=$BIND_UNIT ;;
	esac
	case "$path" in
	nginx) target="--tcp 127.0.0.1:80 --host localhost" ;;
	socket) target="--unix /run/myapp.sock" ;;
	port) target="--tcp $BIND_ADDR --host localhost" ;;
	esac
	# On the socket the client is Node's own peer: on SIGTERM Node closes its
	# idle keep-alive connections at once, and a request crossing that close
	# reaches no one. The client resends such a request on a new connection,
	# as browsers and curl do (RFC 9112 9.3.1) and as debian/tests/examples
	# does; each one is counted (resent_reused), in both Express rows alike.
	case "$way-$path" in
	express-*-socket) target="$target --retry-reused" ;;
	esac
	# our handover: every request and every deploy's step times are kept, so
	# the report can tell which step the slow requests fall in
	case "$way" in
	zdd | zdd-restart | express-zdd) trace_requests=yes ;;
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
		zdd | express-zdd) deploy_zdd "$i" || failed=$((failed + 1)) ;;
		zdd-restart) deploy_zdd_restart || failed=$((failed + 1)) ;;
		sock-restart) deploy_sock_restart || failed=$((failed + 1)) ;;
		express-sock-restart) deploy_express_restart || failed=$((failed + 1)) ;;
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
	kv "$dir/meta.txt" app_after "$(live_app)"
	case "$way" in
	bind-restart) kv "$dir/meta.txt" memory_peak "$(memory_peak $BIND_UNIT)" ;;
	*) kv "$dir/meta.txt" memory_peak "$(memory_peak myapp.service)" ;;
	esac
	log "  $(grep -E '^requests' "$dir/load.out" || echo 'no load figures')"
}

ALL_SERIES="zdd-nginx zdd-socket zdd-restart-socket sock-restart-nginx sock-restart-socket bind-restart-port \
$EXPRESS_SERIES"

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
	express=
	for s in $EXPRESS_SERIES; do
		! wanted "$s" || express="$express $s"
	done
	[ -n "$express" ] || return 0
	log "the guide's Express app (examples/node-express) goes live for:$express"
	if express_up; then
		for s in $express; do
			# express-sock-restart-nginx: way express-sock-restart, path nginx
			series "${s%-*}" "${s##*-}" "$EXPRESS_RATE"
		done
	else
		log "the Express app did not go live (express-setup.log): its series are not run"
		for s in $express; do series_not_run "${s%-*}" "${s##*-}" "$EXPRESS_RATE" "the Express app did not go live"; done
	fi
	express_down
}
