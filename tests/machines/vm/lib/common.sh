# shellcheck shell=bash
# Shared helpers of the VM runner: logging, checks, the mirror, background
# commands that a trapped signal can interrupt.

# shellcheck disable=SC2034 # read by host.sh (log, die, need_root, need_cmds)
RUNNER=vm
# shellcheck disable=SC2034
ROOT_NEEDED_FOR="debootstrap, loop mount, qemu"
# shellcheck disable=SC2034
MIRROR_VAR=VM_MIRROR
# shellcheck disable=SC2034
DEPS_LIST=tests/setup/deps/vm.txt
# shellcheck source=tests/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../../lib/host.sh"

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
