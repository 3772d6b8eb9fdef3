# shellcheck shell=sh
# shellcheck disable=SC2154,SC2034 # variables shared with tests/bench/inside, which sources this
# Fault drills under load (sourced by inside): each runs a client on the
# app's socket and one through nginx at $DRILL_RATE req/s, does one bad
# thing, and records its expected outcome, checks of the machine's state
# and the clients' figures in $results/drills/NN-NAME/. The report judges
# the load figures against `load_expect`: "none" (no failed request, no
# lost write) or "no-refused" (no refused connection, no lost write; the
# requests in flight in a killed process may fail).

drill_n=0
# drill_begin NAME EXPECTED LOAD_EXPECT: starts the clients.
drill_begin() {
	drill_n=$((drill_n + 1))
	dir=$results/drills/$(printf '%02d' "$drill_n")-$1
	mkdir -p "$dir"
	: >"$dir/meta.txt"
	: >"$dir/checks.txt"
	kv "$dir/meta.txt" name "$1"
	kv "$dir/meta.txt" expected "$2"
	kv "$dir/meta.txt" load_expect "$3"
	log "drill $drill_n: $1"
	rate=$DRILL_RATE
	mark_logs
	start_load socket --unix /run/myapp.sock
	start_load nginx --tcp 127.0.0.1:80 --host localhost
	sleep 1
	t0=$(now_ms)
}
drill_end() {
	window "$t0" "$(sed -n 's/^name=//p' "$dir/meta.txt")"
	sleep 1
	stop_loads
	save_logs
}
# drill_check DESCRIPTION CMD…: one line "ok|fail DESCRIPTION" of the drill.
drill_check() {
	what=$1
	shift
	if "$@" >>"$dir/action.log" 2>&1; then echo "ok $what" >>"$dir/checks.txt"; else
		echo "fail $what" >>"$dir/checks.txt"
	fi
}
drill_eq() { # drill_eq DESCRIPTION EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then echo "ok $1" >>"$dir/checks.txt"; else
		echo "fail $1 (expected '$2', got '$3')" >>"$dir/checks.txt"
	fi
}
git_app() { as_deploy git -C "$work/app" "$@"; }
push_app() { git_app push origin HEAD:main >>"$dir/action.log" 2>&1; }
not() { ! "$@"; }
status_ok() { myapp-zdd status >>"$dir/action.log" 2>&1; }

# bad_release NAME EXPECTED: push what is committed in the clone; it must be
# refused and leave everything as it was.
bad_release() {
	good=$(live_revision)
	n=$(releases_count)
	drill_begin "$1" "$2" none
	drill_check "the push is refused" not push_app
	drill_end
	drill_eq "the live revision is unchanged" "$good" "$(live_revision)"
	drill_eq "no release directory left behind" "$n" "$(releases_count)"
	drill_check "myapp-zdd status: all active and healthy" status_ok
	git_app reset -q --hard "$good"
}
python_release() { # python_release MODE MESSAGE: commit the Python app
	git_app rm -q -r .
	cp -a "$src/tests/apps/python/." "$work/app/"
	[ -z "$1" ] || echo "$1" >"$work/app/mode"
	chown -R deploy:deploy "$work/app"
	git_app add -A
	git_app commit -qm "$2"
}

wait_new_main_pid() { # wait_new_main_pid OLD: up to 10 s
	for _ in $(seq 1 100); do
		pid=$(systemctl show -p MainPID --value myapp.service)
		[ "$pid" = 0 ] || [ "$pid" = "$1" ] || { systemctl is-active -q myapp.service && return 0; }
		sleep 0.1
	done
	return 1
}
# main_pid_changed OLD: myapp.service is active with a main process that is
# neither OLD nor 0 (MainPID=0: no process, the app is down).
main_pid_changed() {
	pid=$(systemctl show -p MainPID --value myapp.service)
	echo "MainPID before $1, now $pid"
	[ "$pid" != 0 ] && [ "$pid" != "$1" ] && systemctl is-active -q myapp.service
}
socket_id() { echo "$(stat -L -c %i /run/myapp.sock) $(systemctl show -p ActiveEnterTimestampMonotonic --value myapp.socket)"; }

# A newer build of this package for the upgrade drill, made before any load
# is measured (it keeps both cores busy for a while).
build_newer_deb() {
	version=$(dpkg-query -W -f='${Version}' myapp-zdd)
	newer="$version+bench1"
	rm -rf "$work/newer"
	mkdir -p "$work/newer/src"
	tar -C "$src" --exclude=./build -cf - . | tar -C "$work/newer/src" -xf -
	(
		cd "$work/newer/src"
		sed -i "1s/(.*)/($newer)/" debian/changelog
		dpkg-buildpackage -b -us -uc >"$work/newer/build.log" 2>&1
	) || { tail -n 20 "$work/newer/build.log" >&2; return 1; }
	newer_deb=$(find "$work/newer" -maxdepth 1 -name "myapp-zdd_${newer}_*.deb" | head -n 1)
	[ -n "$newer_deb" ]
}

run_drills() {
	conf=/etc/myapp-zdd/myapp-zdd.conf
	# Failing releases fail fast (the defaults are 60 s and 10 s).
	sed -i '/^READY_TIMEOUT=/d; /^HEALTH_TIMEOUT=/d' "$conf"
	printf 'READY_TIMEOUT=10\nHEALTH_TIMEOUT=5\n' >>"$conf"
	rm -rf "$work/app" "$work/app2"
	as_deploy git clone -q /var/repo/myapp.git "$work/app"
	as_deploy git clone -q /var/repo/myapp.git "$work/app2"
	for c in app app2; do
		as_deploy git -C "$work/$c" config user.email bench@localhost
		as_deploy git -C "$work/$c" config user.name bench
	done

	drill_begin sigkill "systemd restarts the app; connections queue in the socket, none refused; requests in flight in the killed process may fail; no acknowledged write lost" no-refused
	old=$(systemctl show -p MainPID --value myapp.service)
	drill_check "the app was running before (main pid $old)" not test "$old" = 0
	drill_check "systemctl kill -s KILL myapp.service" systemctl kill -s KILL myapp.service
	drill_check "a new main process is active within 10 s" wait_new_main_pid "$old"
	drill_end
	drill_check "myapp-zdd status: all active and healthy" status_ok

	printf 'all:\n\t@echo compiling; exit 1\n' >"$work/app/Makefile"
	git_app commit -qam "broken build"
	bad_release build-fails "push refused, nothing live changes, no failed request"

	python_release "" "exits at start"
	printf '#!/bin/sh\necho starting; exit 3\n' >"$work/app/start"
	printf 'all:\n\t@true\n' >"$work/app/Makefile"
	git_app commit -qam "exits at start"
	bad_release exits-at-start "push refused, nothing live changes, no failed request"

	python_release never-ready "never ready"
	bad_release never-ready "push refused after READY_TIMEOUT (10 s), nothing live changes, no failed request"

	python_release sick "fails its health probe"
	bad_release health-fails "push refused after HEALTH_TIMEOUT (5 s), nothing live changes, no failed request"

	as_deploy git -C "$work/app2" pull -q --ff-only
	as_deploy git -C "$work/app" commit -q --allow-empty -m "push A"
	as_deploy git -C "$work/app2" commit -q --allow-empty -m "push B"
	a=$(git_app rev-parse HEAD)
	b=$(as_deploy git -C "$work/app2" rev-parse HEAD)
	drill_begin two-pushes "one push deploys, the other is refused (branch moved while it waited for the lock); no failed request" none
	(as_deploy git -C "$work/app" push origin HEAD:main >"$work/push-a.log" 2>&1) &
	pa=$!
	(as_deploy git -C "$work/app2" push origin HEAD:main >"$work/push-b.log" 2>&1) &
	pb=$!
	ra=0 rb=0
	wait "$pa" || ra=$?
	wait "$pb" || rb=$?
	drill_end
	cat "$work/push-a.log" "$work/push-b.log" >>"$dir/action.log"
	if [ "$ra" = 0 ]; then winner=$a; else winner=$b; fi
	drill_eq "exactly one push succeeded (A=$ra, B=$rb)" 1 "$(( (ra == 0) + (rb == 0) ))"
	drill_eq "the winning push is live" "$winner" "$(live_revision)"
	drill_check "myapp-zdd status: all active and healthy" status_ok
	for c in app app2; do
		as_deploy git -C "$work/$c" fetch -q origin
		as_deploy git -C "$work/$c" reset -q --hard origin/main
	done

	prev=$(cat /var/www/myapp/previous/REVISION)
	drill_begin rollback "the previous release is live again through the handover; no failed request" none
	drill_check "myapp-zdd rollback" myapp-zdd rollback
	drill_end
	drill_eq "the previous revision is live" "$prev" "$(live_revision)"
	drill_check "myapp-zdd status: all active and healthy" status_ok

	sock=$(socket_id)
	old=$(systemctl show -p MainPID --value myapp.service)
	drill_begin apt-upgrade "apt install of a newer build: the socket is never restarted, the app is handed over; no failed request" none
	drill_check "apt-get install ./myapp-zdd_$newer.deb" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$newer_deb"
	drill_end
	drill_eq "the newer version is installed" "$newer" "$(dpkg-query -W -f='${Version}' myapp-zdd)"
	drill_eq "the socket was never restarted (inode, start time)" "$sock" "$(socket_id)"
	drill_check "the app was restarted (new main pid, not 0)" main_pid_changed "$old"
	drill_check "myapp-zdd status: all active and healthy" status_ok

	sock=$(socket_id)
	drill_begin reconfigure "dpkg-reconfigure with unchanged answers: socket untouched; no failed request" none
	drill_check "dpkg-reconfigure -f noninteractive myapp-zdd" dpkg-reconfigure -f noninteractive myapp-zdd
	drill_end
	drill_eq "the socket was never restarted (inode, start time)" "$sock" "$(socket_id)"
	drill_check "myapp-zdd status: all active and healthy" status_ok

	# An nspawn reboot would end the testbed's session (the container's init
	# exits and the testbed tears down), so the nearest thing: everything of
	# the app stopped, then only the socket started, as sockets.target does
	# at boot. The load starts once the socket is back; the first request
	# activates the app. (While the socket is gone, clients are refused — as
	# on a real reboot — and that part is not measured.)
	systemctl stop myapp.socket myapp-probe.socket myapp.service
	down=$(systemctl is-active myapp.service || true)
	systemctl start myapp.socket
	drill_begin reboot-simulated "socket back, app stopped; the first request activates the app; no failed request" none
	drill_eq "the app was stopped before" inactive "$down"
	drill_check "the app is active after the first requests" systemctl is-active -q myapp.service
	drill_end
	drill_check "myapp-zdd status: all active and healthy" status_ok
}
