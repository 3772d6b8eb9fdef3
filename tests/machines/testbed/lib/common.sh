# shellcheck shell=bash
# Shared helpers of the testbed: logging, argument checks, the mirror.

# shellcheck disable=SC2034 # read by host.sh (log, die, need_root, need_cmds)
RUNNER=testbed
# shellcheck disable=SC2034
ROOT_NEEDED_FOR="debootstrap, mounts, systemd-nspawn"
# shellcheck disable=SC2034
MIRROR_VAR=TESTBED_MIRROR
# shellcheck disable=SC2034
DEPS_LIST=tests/setup/deps/testbed.txt
# shellcheck source=tests/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../../lib/host.sh"

# Remove a directory tree that may still hold mount points (an interrupted run):
# unmount first so rm never descends into /proc, /dev or a bound host path.
remove_tree() {
	local dir=$1 mnt
	[ -e "$dir" ] || return 0
	findmnt -rn -o TARGET | awk -v d="$dir" 'index($0, d "/") == 1 || $0 == d' | sort -r |
		while read -r mnt; do umount -l "$mnt" || true; done
	# A mount in a namespace that just died is released a moment later
	# (EBUSY meanwhile): retry briefly.
	for _ in $(seq 1 20); do
		rm -rf --one-file-system "$dir" 2>/dev/null && return 0
		sleep 0.2
	done
	rm -rf --one-file-system "$dir"
}

# Stop the command wait_fg was waiting for when we were interrupted.
kill_fg() {
	local sig=${1:-TERM}
	[ -n "$FG_PID" ] || return 0
	{
		kill -"$sig" "$FG_PID" || true
		kill -CONT "$FG_PID" || true
		for _ in $(seq 1 50); do
			kill -0 "$FG_PID" || break
			sleep 0.1
		done
		kill -KILL "$FG_PID" || true
		wait "$FG_PID" || true
	} 2>/dev/null # no "Killed" job notice
	FG_PID=""
}
