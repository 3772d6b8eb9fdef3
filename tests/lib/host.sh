# shellcheck shell=bash
# Host facts both throw-away machine runners need (tests/testbed, tests/vm):
# commands present, a sane suite name, this host's Debian mirror. The caller
# defines die() and DEPS_LIST (the tests/deps file that lists its tools).

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
