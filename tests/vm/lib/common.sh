# shellcheck shell=bash
# Shared helpers of the VM runner: logging, checks, the mirror, background
# commands that a trapped signal can interrupt.

log() { printf 'vm: %s\n' "$*" >&2; }
die() { printf 'vm: error: %s\n' "$*" >&2; exit 1; }

need_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, loop mount, qemu)"
}

# shellcheck disable=SC2034 # read by host.sh (need_cmds)
DEPS_LIST=tests/deps/vm.txt
# shellcheck source=tests/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../lib/host.sh"

resolve_mirror() {
	if [ -n "${OPT_MIRROR:-}" ]; then
		printf '%s\n' "$OPT_MIRROR"
	elif [ -n "${VM_MIRROR:-}" ]; then
		printf '%s\n' "$VM_MIRROR"
	else
		host_mirror || die "no Debian mirror found in this host's apt sources; pass --mirror URL"
	fi
}

# Run a command in the background and wait for it, so that a trapped INT/TERM
# interrupts the wait at once (bash runs traps only between foreground
# commands). FG_PID is the command's pid while it runs.
FG_PID=""
wait_fg() {
	local status=0
	"$@" <&0 &
	FG_PID=$!
	wait "$FG_PID" || status=$?
	FG_PID=""
	return "$status"
}

# Stop (TERM, then KILL after 5 s) the command wait_fg is waiting for.
kill_fg() {
	[ -n "$FG_PID" ] || return 0
	stop_pid "$FG_PID"
	wait "$FG_PID" 2>/dev/null || true
	FG_PID=""
}

# A function run by wait_fg is a subshell: stop its children first (an
# unshare --kill-child takes its namespace down with it).
stop_pid() {
	local pid=$1 i child
	for child in $(pgrep -P "$pid" || true); do stop_pid "$child"; done
	kill -TERM "$pid" 2>/dev/null || return 0
	kill -CONT "$pid" 2>/dev/null || true
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	log "pid $pid ignored TERM for 5 s ($i tries): killing it"
	kill -KILL "$pid" 2>/dev/null || true
}
