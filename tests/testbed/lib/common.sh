# shellcheck shell=bash
# Shared helpers of the testbed: logging, argument checks, the mirror.

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { printf 'testbed: error: %s\n' "$*" >&2; exit 1; }

need_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, mounts, systemd-nspawn)"
}

# shellcheck disable=SC2034 # read by host.sh (need_cmds)
DEPS_LIST=tests/deps/testbed.txt
# shellcheck source=tests/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../lib/host.sh"

resolve_mirror() {
	local mirror=${OPT_MIRROR:-${TESTBED_MIRROR:-}}
	[ -n "$mirror" ] || mirror=$(host_mirror) ||
		die "no Debian mirror found in this host's apt sources; pass --mirror URL"
	case "$mirror" in
	http://* | https://* | file://*) ;;
	*) die "mirror must be an http(s):// or file:// URL, got '$mirror'" ;;
	esac
	printf '%s\n' "${mirror%/}" # one spelling, one cache key
}

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

# Run an external command in the background and wait for it, so that a
# trapped INT/TERM interrupts the wait at once (bash runs traps only between
# foreground commands). The command is exec'ed directly, so FG_PID is its pid.
FG_PID=""
wait_fg() {
	local status=0
	"$@" <&0 &
	FG_PID=$!
	wait "$FG_PID" || status=$?
	FG_PID=""
	return "$status"
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
