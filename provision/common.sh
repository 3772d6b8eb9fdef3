# shellcheck shell=sh
# shellcheck disable=SC2034 # the settings are used by the scripts that source this
# Shared by the provision steps: the settings they act on. The engine's file
# (myapp-zdd.conf) and the site's (server.conf) are KEY=value lines, written
# by the package from debconf answers and editable by the admin.
ZDD_ETC=${ZDD_ETC:-/etc/myapp-zdd}
ZDD_SHARE=${ZDD_SHARE:-/usr/share/myapp-zdd}

say() { printf 'myapp-zdd: %s\n' "$*"; }
die() {
	printf 'myapp-zdd: error: %s\n' "$*" >&2
	exit 1
}

# The settings: the engine owns every default and every check (`myapp-zdd
# config`, src/zdd/config.c); these steps ask it and repeat neither. A value
# in the files that is not valid stops every step here, saying where; only
# the settings step (ZDD_SETTING_STEP=1), which is how a value is mended,
# goes on from the defaults.
ZDD_ENGINE=${ZDD_ENGINE:-/usr/bin/myapp-zdd}
engine_config() { "$ZDD_ENGINE" --config "$ZDD_ETC/myapp-zdd.conf" config "$@"; }
if ! settings=$(engine_config list); then
	[ -n "${ZDD_SETTING_STEP:-}" ] || die "the settings in $ZDD_ETC are not valid (see above)"
	settings=$(engine_config defaults)
fi
# Every setting becomes the shell variable of its name (APP, LISTEN,
# HTTPS...); the value is assigned, never evaluated.
while IFS='=' read -r key value; do
	case $key in
	'' | *[!A-Z0-9_]* | [0-9]*) continue ;;
	esac
	eval "$key=\$value"
done <<EOT
$settings
EOT
# HTTPS=letsencrypt: certbot's lineage of ours, and the webroot of its
# challenges (the site serves it on port 80; nginx/myapp-zdd.conf names it).
LETSENCRYPT_LIVE=/etc/letsencrypt/live/myapp-zdd
LETSENCRYPT_WEBROOT=/var/lib/myapp-zdd/acme
# acme_names: the names to certify, SERVER_NAME but localhost; stops the
# step when none is left or one is a wildcard (HTTP-01 cannot prove one).
acme_names() {
	acme=
	for n in $SERVER_NAME; do
		case $n in
		localhost) ;;
		*'*'*) die "HTTPS=letsencrypt cannot certify the wildcard $n in SERVER_NAME (HTTP challenges only)" ;;
		*) acme="$acme${acme:+ }$n" ;;
		esac
	done
	[ -n "$acme" ] || die "HTTPS=letsencrypt needs SERVER_NAME to give this server's DNS name(s), not only localhost"
	printf '%s\n' "$acme"
}
# check_setting KEY VALUE: the engine's verdict; a bad value stops the step.
check_setting() { engine_config check "$1=$2" || die "$1: not changed (see above)"; }

# as_deploy CMD…: run a command as the deploy user. Everything inside the
# deploy user's trees (its home, the repo, the app root) is touched this way
# only: the deploy user can plant links there, and root must not follow them.
as_deploy() { runuser -u "$DEPLOY_USER" -- "$@"; }
# in_deploy_tree CMD…: as_deploy, and a failure stops the step saying why
# (a path there that is not what the package made: a link, or not the user's).
in_deploy_tree() {
	as_deploy "$@" || die "as $DEPLOY_USER, '$*' failed: is a path in its trees a link, or not its own?"
}

# root_only DIR: DIR is a real directory (not a link) owned by root that no
# one else can write, so what a name in it points to is root's decision.
root_only() {
	[ -n "$(find "$1" -maxdepth 0 -type d -user 0 ! -perm /022 2>/dev/null)" ]
}

# trusted_parents PATH: every directory above PATH is root_only, so no other
# user can swap PATH for a link while root works on it.
trusted_parents() {
	dir=$1
	while [ "$dir" != / ]; do
		dir=$(dirname "$dir")
		root_only "$dir" || die "$dir (above $1) must be a directory of root's that only root can write"
	done
}

# root_dir DIR: DIR exists as a root_only directory (created 0755 if missing).
root_dir() {
	trusted_parents "$1"
	[ -e "$1" ] || [ -L "$1" ] || mkdir -m 0755 "$1"
	root_only "$1" || die "$1 must be a directory of root's that only root can write"
}

# deploy_top DIR MODE: DIR, in a root_only directory, exists and belongs to
# the deploy user: created if missing; an existing one must be a real
# directory that is the deploy user's already (or root's and empty, as an
# admin may have prepared it). Nothing else is ever chowned.
deploy_top() {
	root_dir "$(dirname "$1")"
	if [ ! -e "$1" ] && [ ! -L "$1" ]; then
		mkdir -m "$2" "$1"
		chown "$DEPLOY_USER:$DEPLOY_USER" "$1"
	elif [ -n "$(find "$1" -maxdepth 0 -type d -user "$DEPLOY_USER")" ]; then
		:
	elif [ -n "$(find "$1" -maxdepth 0 -type d -user 0 -empty)" ]; then
		chown -h "$DEPLOY_USER:$DEPLOY_USER" "$1"
		chmod "$2" "$1"
	else
		die "$1 exists but is not a directory of $DEPLOY_USER's: move it away or choose another path"
	fi
}

systemd_running() { [ -d /run/systemd/system ]; }

# set_conf FILE KEY VALUE: set one KEY=value line, keeping every other line
# (and the admin's comments) as it is.
set_conf() {
	if [ -f "$1" ] && grep -q "^$2=" "$1"; then
		tmp=$(mktemp "$1.XXXXXX")
		awk -v k="$2" -v v="$3" 'index($0, k "=") == 1 { print k "=" v; next } { print }' "$1" >"$tmp"
		chmod 0644 "$tmp"
		mv "$tmp" "$1"
	else
		printf '%s=%s\n' "$2" "$3" >>"$1"
	fi
}

# write_if_changed FILE: replace FILE with stdin if that differs; returns 0
# when it changed, 1 when it was already so.
write_if_changed() {
	tmp=$(mktemp "$1.XXXXXX")
	cat >"$tmp"
	chmod 0644 "$tmp"
	if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
		rm -f "$tmp"
		return 1
	fi
	mv "$tmp" "$1"
}

# upstream_address: the nginx upstream for LISTEN (a UNIX path, PORT or
# HOST:PORT); listen_stream: the socket unit's ListenStream= for it.
upstream_address() {
	case $LISTEN in
	/*) printf 'unix:%s' "$LISTEN" ;;
	*:*) printf '%s' "$LISTEN" ;;
	*) printf '127.0.0.1:%s' "$LISTEN" ;;
	esac
}
listen_stream() {
	case $LISTEN in
	/* | *:*) printf '%s' "$LISTEN" ;;
	*) printf '127.0.0.1:%s' "$LISTEN" ;;
	esac
}
