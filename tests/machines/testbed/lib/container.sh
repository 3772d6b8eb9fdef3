# shellcheck shell=bash
# One throw-away container: an overlay over the cached rootfs (upper layer in
# a run directory), systemd-nspawn -b started from its own private cgroup in a
# private mount namespace, entered with nsenter, always torn down.

CT_RUN_DIR="" CT_NSPAWN_PID="" CT_INIT_PID="" CT_NAME=""
CT_CGROUPS=() CT_NSENTER=()
BOOT_TIMEOUT=${TESTBED_BOOT_TIMEOUT:-120}
CT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The command prefix that runs a command inside the container as root, with
# a clean environment.
ct_nsenter() {
	CT_NSENTER=(nsenter -t "$CT_INIT_PID" -m -u -i -n -p -C --
		env -i PATH="$CT_PATH" HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}")
}

# Run a short command inside the container.
ct_exec() {
	ct_nsenter
	"${CT_NSENTER[@]}" "$@"
}

# Run a long command inside the container: in the background, so a trapped
# INT/TERM interrupts at once. (wait_fg tracks nsenter itself: nsenter stops
# itself when its child is stopped, which systemd-shutdown does to every
# process, so teardown must be able to kill it.)
ct_wait() {
	ct_nsenter
	wait_fg "${CT_NSENTER[@]}" "$@"
}

# Make the private cgroups this container's nspawn starts from: several
# --keep-unit containers in one cgroup collide.
make_cgroups() {
	local mode=$1 dir
	if [ "$mode" = v1 ]; then
		[ -d /sys/fs/cgroup/systemd ] || die "no name=systemd cgroup hierarchy; try --cgroup v2"
		CT_CGROUPS+=("/sys/fs/cgroup/systemd/$CT_NAME")
	fi
	if [ -d /sys/fs/cgroup/unified ]; then
		CT_CGROUPS+=("/sys/fs/cgroup/unified/$CT_NAME")
	elif [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
		CT_CGROUPS+=("/sys/fs/cgroup/$CT_NAME")
	fi
	for dir in "${CT_CGROUPS[@]}"; do mkdir "$dir"; done
}

# container_boot SUITE ROOTFS CGROUP_MODE: prepare the run directory (the
# caller fills $CT_RUN_DIR/upper/testbed before), start and wait for boot.
container_prepare() {
	CT_RUN_DIR=$(mktemp -d "${TESTBED_RUN_DIR:-/var/tmp}/myapp-zdd-testbed.XXXXXX")
	CT_NAME="myapp-zdd-testbed-${CT_RUN_DIR##*.}"
	mkdir -p "$CT_RUN_DIR/upper/testbed" "$CT_RUN_DIR/work" "$CT_RUN_DIR/merged"
	: >"$CT_RUN_DIR/fstab"
}

container_boot() {
	local rootfs=$1 mode=$2 started state
	started=$(date +%s%N)
	make_cgroups "$mode"
	log "booting $CT_NAME (cgroup $mode)"
	# setsid: a Ctrl-C on the terminal reaches only this script, which then
	# tears down in order. The overlay lives in the private mount namespace, so
	# it disappears with the container even if this script is killed.
	# shellcheck disable=SC2016 # expanded by the inner shell
	setsid unshare --mount --propagation private -- sh -eu -c '
		lower=$1 run=$2 mode=$3 name=$4; shift 4
		mount -t overlay overlay \
			-o "lowerdir=$lower,upperdir=$run/upper,workdir=$run/work" "$run/merged"
		if [ "$mode" = v2 ]; then
			mount -t cgroup2 cgroup2 /sys/fs/cgroup
			echo $$ >"/sys/fs/cgroup/$name/cgroup.procs"
			export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1
		else
			for cg in "$@"; do echo $$ >"$cg/cgroup.procs"; done
			export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=0
		fi
		exec systemd-nspawn --quiet --directory="$run/merged" --boot \
			--register=no --keep-unit --private-network \
			--machine="$name" --hostname=testbed \
			--bind-ro="$run/fstab:/etc/fstab" --console=read-only
	' testbed-boot "$rootfs" "$CT_RUN_DIR" "$mode" "$CT_NAME" "${CT_CGROUPS[@]}" \
		</dev/null >"$CT_RUN_DIR/console.log" 2>&1 &
	CT_NSPAWN_PID=$!

	# nspawn's first child is a short-lived helper that forks init: look the
	# child up again until systemd inside answers.
	state=""
	for _ in $(seq 1 $((BOOT_TIMEOUT * 5))); do
		CT_INIT_PID=$(pgrep -P "$CT_NSPAWN_PID" -x systemd | head -n1 || true)
		[ -z "$CT_INIT_PID" ] || state=$(ct_exec systemctl is-system-running 2>/dev/null || true)
		# "offline" is also what is-system-running says before systemd has
		# set up /run/systemd/system: early in the boot, not a verdict
		# (breaking on it failed a boot now and then, in 1 s, as "did not
		# boot within 120s").
		case "$state" in
		running | degraded) break ;;
		maintenance | stopping) break ;;
		esac
		kill -0 "$CT_NSPAWN_PID" 2>/dev/null || break
		sleep 0.2
	done
	case "$state" in
	running | degraded) ;;
	*)
		tail -n 30 "$CT_RUN_DIR/console.log" >&2
		die "container did not boot (state '${state:-none}' after $((($(date +%s%N) - started) / 1000000)) ms, at most ${BOOT_TIMEOUT}s; console above)"
		;;
	esac
	log "booted in $((($(date +%s%N) - started) / 1000000)) ms (system $state)"
	[ "$state" = running ] || ct_exec systemctl --failed --no-pager >&2 || true
}

# wait_exit PID TENTHS: wait up to TENTHS/10 s for a process to end.
wait_exit() {
	for _ in $(seq 1 "$2"); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
}

# Stop the container whatever state it is in; idempotent.
container_teardown() {
	local cg pids started poweroff_pid=""
	[ -n "$CT_RUN_DIR" ] || return 0
	started=$(date +%s%N)
	# First whatever we entered the container with: a stopped nsenter cannot
	# reap its child, and systemd-shutdown would wait 90 s for that zombie.
	# Killed, its child is reparented to the container's init.
	kill_fg KILL
	if [ -n "$CT_NSPAWN_PID" ] && kill -0 "$CT_NSPAWN_PID" 2>/dev/null; then
		# An orderly stop can hang ~90 s on a stuck unit; nothing in a
		# throw-away container needs one.
		# In the background: systemd-shutdown SIGSTOPs every process in the
		# container, and nsenter stops itself with its child, so do not wait
		# for it. (Outside the PID namespace, trixie's systemctl cannot talk
		# to its manager: "Transport endpoint is not connected".)
		if [ -n "$CT_INIT_PID" ]; then
			nsenter -t "$CT_INIT_PID" -m -u -i -n -p -C -- \
				systemctl poweroff --force >/dev/null 2>&1 </dev/null &
			poweroff_pid=$!
		fi
		wait_exit "$CT_NSPAWN_PID" 30
		# systemd-shutdown gives processes 90 s after SIGTERM (an interrupted
		# autopkgtest takes its time): SIGRTMIN+14 is systemd's immediate
		# poweroff, no process killing spree.
		if [ -n "$CT_INIT_PID" ] && kill -0 "$CT_NSPAWN_PID" 2>/dev/null; then
			kill -s RTMIN+14 "$CT_INIT_PID" 2>/dev/null || true
			wait_exit "$CT_NSPAWN_PID" 20
		fi
		if kill -TERM "$CT_NSPAWN_PID" 2>/dev/null; then wait_exit "$CT_NSPAWN_PID" 10; fi
		kill -KILL "$CT_NSPAWN_PID" 2>/dev/null || true
		[ -z "$CT_INIT_PID" ] || kill -KILL "$CT_INIT_PID" 2>/dev/null || true
	fi
	[ -z "$CT_NSPAWN_PID" ] || wait "$CT_NSPAWN_PID" 2>/dev/null || true
	if [ -n "${poweroff_pid:-}" ]; then
		{ kill -KILL "$poweroff_pid" || true; wait "$poweroff_pid" || true; } 2>/dev/null
	fi
	# Anything left in our cgroups belongs to this container: kill it, then
	# remove the cgroups deepest first.
	for cg in "${CT_CGROUPS[@]}"; do
		[ -d "$cg" ] || continue
		for _ in $(seq 1 20); do
			pids=$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null || true)
			[ -n "$pids" ] || break
			# shellcheck disable=SC2086 # one pid a word
			kill -KILL $pids 2>/dev/null || true
			sleep 0.1
		done
		find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
		[ ! -d "$cg" ] || log "warning: cannot remove cgroup $cg"
	done
	remove_tree "$CT_RUN_DIR"
	log "torn down $CT_NAME in $((($(date +%s%N) - started) / 1000000)) ms"
	CT_RUN_DIR="" CT_NSPAWN_PID="" CT_INIT_PID="" CT_CGROUPS=()
}

# Copy the source tree and the debs into the upper layer as /testbed/src,
# /testbed/debs (before the boot: no copying through the container).
container_seed() {
	local deb
	if [ -n "$OPT_SRC" ]; then
		# Not .git: autopkgtest does not need the history.
		mkdir -p "$CT_RUN_DIR/upper/testbed/src"
		tar -C "$OPT_SRC" --exclude=./.git -cf - . | tar -C "$CT_RUN_DIR/upper/testbed/src" -xf -
	fi
	mkdir -p "$CT_RUN_DIR/upper/testbed/debs"
	for deb in "${OPT_DEBS[@]}"; do cp "$deb" "$CT_RUN_DIR/upper/testbed/debs/"; done
}

# Boot a container for SUITE with the options' debs and sources seeded.
container_start() {
	container_prepare
	rootfs_for_options "$1"
	container_seed
	container_boot "$ROOTFS_ENTRY/rootfs" "$OPT_CGROUP"
}

# Install the debs under test as a user would, offline.
container_install_debs() {
	[ "${#OPT_DEBS[@]}" -gt 0 ] || return 0
	log "installing: $(cd "$CT_RUN_DIR/upper/testbed/debs" && echo ./*.deb)"
	# shellcheck disable=SC2016 # expanded by the inner shell
	ct_wait sh -c 'cd /testbed/debs && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./*.deb' >&2 ||
		die "apt install of the debs failed in the container"
}

# Save what explains a run: journal, failed units, autopkgtest output.
collect_artifacts() {
	local dest=$1
	mkdir -p "$dest"
	rm -rf "${dest:?}/autopkgtest"
	ct_exec journalctl -b --no-pager >"$dest/journal.txt" 2>&1 || true
	ct_exec systemctl --failed --no-pager >"$dest/systemctl-failed.txt" 2>&1 || true
	ct_exec systemctl list-units --all --no-pager >"$dest/systemctl-units.txt" 2>&1 || true
	ct_exec dpkg -l >"$dest/dpkg-l.txt" 2>&1 || true
	cp "$CT_RUN_DIR/console.log" "$dest/console.log" 2>/dev/null || true
	if [ -d "$CT_RUN_DIR/upper/testbed/out" ]; then
		cp -a "$CT_RUN_DIR/upper/testbed/out" "$dest/autopkgtest"
	fi
	log "artifacts in $dest"
}

cmd_run() {
	local suite=$1 status=0 art ignore summary excluded name started selected=()
	[ -n "$OPT_SRC" ] || die "run needs --src DIR (the source tree with debian/tests)"
	[ -f "$OPT_SRC/debian/tests/control" ] || die "no debian/tests/control in $OPT_SRC"
	[ "${#OPT_DEBS[@]}" -gt 0 ] || die "run needs at least one --deb FILE"
	art=${OPT_ARTIFACTS:-./testbed-artifacts/$suite}
	# Only what the container truly provides: it is a container (booted
	# systemd, root) and thrown away after the run.
	ignore=${OPT_IGNORE:-${TESTBED_IGNORE_RESTRICTIONS:-isolation-container,breaks-testbed}}
	container_prepare
	excluded="$CT_RUN_DIR/excluded-tests"
	if [ "${#OPT_TESTS[@]}" -gt 0 ]; then
		selected=("${OPT_TESTS[@]}")
		: >"$excluded"
	else
		mapfile -t selected < <(select_tests "$OPT_SRC/debian/tests/control" "$excluded" "$ignore")
	fi
	if [ -s "$excluded" ]; then
		log "not run here (isolation-machine: the VM runner's): $(tr '\n' ' ' <"$excluded")"
	fi
	[ "${#selected[@]}" -gt 0 ] || die "no test of $OPT_SRC can run in the container"

	rootfs_for_options "$suite"
	container_seed
	container_boot "$ROOTFS_ENTRY/rootfs" "$OPT_CGROUP"

	local args=(--ignore-restrictions="$ignore" --no-built-binaries
		--output-dir=/testbed/out --timeout-test="$OPT_TIMEOUT")
	if [ "${#OPT_TESTS[@]}" -gt 0 ] || [ -s "$excluded" ]; then
		for name in "${selected[@]}"; do args+=(--test-name="$name"); done
	fi
	log "autopkgtest ${args[*]} (timeout ${OPT_TIMEOUT}s)"
	started=$(date +%s)
	# Our own bound on the whole run; autopkgtest's --timeout-test is per test.
	# shellcheck disable=SC2016 # expanded by the inner shell
	ct_wait timeout --kill-after=30 "$OPT_TIMEOUT" \
		sh -c 'exec autopkgtest "$@" /testbed/src /testbed/debs/*.deb -- null' autopkgtest "${args[@]}" \
		>"$CT_RUN_DIR/autopkgtest.log" 2>&1 || status=$?

	summary="$CT_RUN_DIR/upper/testbed/out/summary"
	printf '\n== autopkgtest summary (%s, %s s) ==\n' "$suite" "$(($(date +%s) - started))"
	if [ -s "$summary" ]; then cat "$summary"; else tail -n 15 "$CT_RUN_DIR/autopkgtest.log"; fi
	while read -r name; do printf '%-20s SKIP isolation-machine (not run in a container)\n' "$name"; done <"$excluded"
	if [ -s "$excluded" ] || { [ -s "$summary" ] && grep -q ' SKIP' "$summary"; }; then
		printf 'skipped: %s\n' "$({ awk '$2 == "SKIP" { print $1 }' "$summary" 2>/dev/null; cat "$excluded"; } | tr '\n' ' ')"
	fi
	case "$status" in
	0) if [ -s "$excluded" ]; then status=2; else log "$suite: all tests passed"; fi ;;
	esac
	case "$status" in
	0) ;;
	2) log "$suite: all tests that ran passed; some were SKIPPED (see above)" ;;
	4 | 6) log "$suite: FAILED: at least one test failed (autopkgtest exit $status)" ;;
	8) log "$suite: FAILED: no test ran (none, or all skipped; autopkgtest exit 8)" ;;
	12 | 14) log "$suite: FAILED: erroneous package (autopkgtest exit $status)" ;;
	16) log "$suite: FAILED: testbed failure (autopkgtest exit 16)" ;;
	124 | 137) log "$suite: FAILED: timed out after ${OPT_TIMEOUT}s" ;;
	*) log "$suite: FAILED: autopkgtest exit $status" ;;
	esac
	# Always: a passing run's figures (load reports, timelines) matter too,
	# and a stale failure's output must not linger beside a new pass.
	collect_artifacts "$art"
	cp "$CT_RUN_DIR/autopkgtest.log" "$art/autopkgtest.log" 2>/dev/null || true
	rm -f "$art/failures.txt"
	case "$status" in
	0 | 2) return 0 ;;
	esac
	failure_digest "$suite" "$art/autopkgtest" "$status" >"$art/failures.txt"
	return 1
}

# A few lines per failed test (its failed checks and errors, the end of its
# stderr), for a CI log that shows only the end of the run's output.
failure_digest() {
	local suite=$1 out=$2 status=$3 name
	printf '%s: autopkgtest exit %s\n' "$suite" "$status"
	[ -s "$out/summary" ] || return 0
	awk '$2 == "FAIL" || $2 == "FLAKY" { print $1 }' "$out/summary" | while read -r name; do
		printf '%s/%s:\n' "$suite" "$name"
		cat "$out/$name-stdout" "$out/$name-stderr" 2>/dev/null | failure_lines | head -n 6 | sed 's/^/  /'
		tail -n 3 "$out/$name-stderr" 2>/dev/null | cut -c1-160 | sed 's/^/  stderr: /'
	done
}

cmd_exec() {
	local suite=$1 status=0
	[ "${#OPT_CMD[@]}" -gt 0 ] || die "exec needs a command after --"
	container_start "$suite"
	container_install_debs
	local dir=/
	[ -z "$OPT_SRC" ] || dir=/testbed/src
	# shellcheck disable=SC2016 # expanded by the inner shell
	ct_wait timeout --foreground --kill-after=30 "$OPT_TIMEOUT" \
		sh -c 'cd "$1" && shift && exec "$@"' sh "$dir" "${OPT_CMD[@]}" || status=$?
	return "$status"
}

cmd_shell() {
	local suite=$1
	OPT_CMD=(bash -l)
	cmd_exec "$suite" || true
}
