# shellcheck shell=bash
# Which packages the rootfs must already hold: the container has no network,
# so every package `apt install ./x.deb` and autopkgtest would fetch must be
# installed when the rootfs is built.

# Base of every testbed: a booting systemd, polkit, the test runner.
# polkitd is the package name in bookworm and trixie (policykit-1 is gone).
BASE_PACKAGES="systemd systemd-sysv dbus polkitd autopkgtest apt-utils ca-certificates"

# Read Debian relationship fields on stdin (callers end each with a comma) ("a (>= 1) | b [amd64] <!nocheck>, c:any")
# and print one relation a line, alternatives kept ("a|b"), no version, arch
# or profile. `apt-get satisfy` resolves them in the suite at hand: the first
# alternative may not exist there (systemd-dev | systemd on bookworm), and a
# name may be virtual (debhelper-compat).
relation_names() {
	tr '\n' ' ' | tr ',' '\n' | sed -E \
		-e 's/\([^)]*\)//g' \
		-e 's/\[[^]]*\]//g' \
		-e 's/<[^>]*>//g' \
		-e 's/:[a-z0-9]+//g' \
		-e 's/[[:space:]]+//g' |
		grep -E '^[a-z0-9][a-z0-9.+-]+(\|[a-z0-9][a-z0-9.+-]+)*$' || true
}

# Print the value of FIELD from every paragraph of a deb822 file
# (continuation lines joined), one value a line.
deb822_field() {
	local file=$1 field=$2
	awk -v want="$(printf '%s' "$field" | tr '[:upper:]' '[:lower:]')" '
		function flush() { if (cur != "") print cur; cur = ""; on = 0 }
		/^[[:space:]]*#/ { next }
		/^[[:space:]]*$/ { flush(); next }
		/^[^[:space:]]/ {
			flush()
			split($0, kv, ":")
			if (tolower(kv[1]) == want) { on = 1; cur = substr($0, length(kv[1]) + 2) }
			next
		}
		on { cur = cur " " $0 }
		END { flush() }' "$file"
}

# Binary package names of the debs under test (to drop them from the list).
deb_names() {
	local deb
	for deb in "$@"; do dpkg-deb -f "$deb" Package; done
}

deb_dependencies() {
	local deb field
	for deb in "$@"; do
		for field in Pre-Depends Depends Recommends; do
			dpkg-deb -f "$deb" "$field"
			printf ',\n' # fields are separate relations
		done
	done | relation_names
}

# Depends: of debian/tests/control. "@" and "@recommends@" are the debs
# themselves (covered by deb_dependencies); @builddeps@ is the source's
# Build-Depends* plus build-essential, as autopkgtest installs them.
test_dependencies() {
	local src=$1 control="$1/debian/tests/control" deps
	[ -f "$control" ] || return 0
	deps=$(deb822_field "$control" Depends | tr '\n' ',')
	case ",$deps," in
	*@builddeps@*)
		printf 'build-essential\n'
		local field
		for field in Build-Depends Build-Depends-Indep Build-Depends-Arch; do
			deb822_field "$src/debian/control" "$field"
			printf ',\n'
		done | relation_names
		;;
	esac
	printf '%s\n' "$deps" | sed -E 's/@[a-z]*@?//g' | relation_names
}

# Filter stdin: drop lines equal to any line of $1.
drop_lines() {
	if [ -z "$1" ]; then cat; else grep -vxF -e "$1" || true; fi
}

# The full sorted package list for a rootfs: base, --packages, the debs'
# relationships and the tests' Depends, minus the debs under test.
package_list() {
	local src=$1 extra=$2
	shift 2
	local own
	own=$(deb_names "$@")
	{
		printf '%s\n' "$BASE_PACKAGES" | tr ' ' '\n'
		printf '%s\n' "$extra" | tr -s ',[:space:]' '\n'
		[ $# -eq 0 ] || deb_dependencies "$@"
		[ -z "$src" ] || test_dependencies "$src"
	} | grep -v '^$' | drop_lines "$own" |
		LC_ALL=C sort -u
}
