# shellcheck shell=bash
# Host facts both throw-away machine runners need (tests/machines/testbed, tests/machines/vm):
# logging, root, commands present, a sane suite name, this host's Debian
# mirror, waiting for a command so that a signal interrupts the wait. The
# caller sets RUNNER (its name in messages), ROOT_NEEDED_FOR, MIRROR_VAR (the
# environment variable that overrides the mirror) and DEPS_LIST (the
# tests/setup/deps file that lists its tools) before sourcing this.

log() { printf '%s: %s\n' "$RUNNER" "$*" >&2; }
die() { printf '%s: error: %s\n' "$RUNNER" "$*" >&2; exit 1; }

need_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root ($ROOT_NEEDED_FOR)"
}

need_cmds() {
	local cmd missing=""
	for cmd in "$@"; do
		command -v "$cmd" >/dev/null 2>&1 || missing="$missing $cmd"
	done
	[ -z "$missing" ] || die "missing commands:$missing (see $DEPS_LIST)"
}

# A suite name goes into paths and a hash: keep it to what Debian/Ubuntu use.
check_suite() {
	case "$1" in
	'' | *[!a-z0-9.-]*) die "bad suite name '$1'" ;;
	esac
}

# First Debian archive URI (http(s)://…/debian) this host's apt uses, so the
# throw-away machine uses the mirror this host is configured for.
host_mirror() {
	local f uri etc=${TESTBED_APT_ETC:-/etc/apt}
	for f in "$etc/sources.list" "$etc"/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		uri=$(sed -n -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?(https?:\/\/[^[:space:]]*\/debian)\/?[[:space:]].*/\2/p' "$f" | head -n1)
		[ -z "$uri" ] || { printf '%s\n' "$uri"; return 0; }
	done
	for f in "$etc"/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		uri=$(awk '
			/^[[:space:]]*#/ { next }
			tolower($1) == "uris:" {
				for (i = 2; i <= NF; i++)
					if ($i ~ /^https?:\/\/.*\/debian\/?$/) { sub(/\/$/, "", $i); print $i; exit }
			}' "$f")
		[ -z "$uri" ] || { printf '%s\n' "$uri"; return 0; }
	done
	return 1
}

# The mirror: --mirror (OPT_MIRROR), else $MIRROR_VAR's value, else this host's.
resolve_mirror() {
	local mirror=${OPT_MIRROR:-${!MIRROR_VAR:-}}
	[ -n "$mirror" ] || mirror=$(host_mirror) ||
		die "no Debian mirror found in this host's apt sources; pass --mirror URL"
	case "$mirror" in
	http://* | https://* | file://*) ;;
	*) die "mirror must be an http(s):// or file:// URL, got '$mirror'" ;;
	esac
	printf '%s\n' "${mirror%/}" # one spelling, one cache key
}

# Run an external command in the background and wait for it, so that a
# trapped INT/TERM interrupts the wait at once (bash runs traps only between
# foreground commands). FG_PID is its pid while it runs (a subshell's, when
# the command is a function).
FG_PID=""
wait_fg() {
	local status=0
	"$@" <&0 &
	FG_PID=$!
	wait "$FG_PID" || status=$?
	FG_PID=""
	return "$status"
}

# failure_lines [FILE…]: the lines of test output that say what failed (a
# failed check, an error), not the passing summaries with the same words.
# Failed checks ("not ok") come first: a test's own output may hold expected
# error lines (a refused push says FAILED) that would crowd them out.
failure_lines() {
	local lines
	lines=$(grep -E '^not ok|FAIL|[Ee]rror|failed' "$@" |
		grep -vE '^ok |, 0 failed|"failed": 0|^# 0 |0 suite\(s\) failed|^(PASS|SKIP) ' | cut -c1-160)
	[ -n "$lines" ] || return 0
	printf '%s\n' "$lines" | grep -E '^not ok' || true
	printf '%s\n' "$lines" | grep -vE '^not ok' || true
}
