# shellcheck shell=sh
# shellcheck disable=SC2034 # the settings are used by the scripts that source this
# Shared by the provision steps: the settings they act on. The engine's file
# (myapp-zdd.conf) and the package's (server.conf) are KEY=value lines,
# written by the package from debconf answers and editable by the admin.
ZDD_ETC=${ZDD_ETC:-/etc/myapp-zdd}
ZDD_SHARE=${ZDD_SHARE:-/usr/share/myapp-zdd}

APP=myapp
DEPLOY_USER=deploy
REPO=/var/repo/myapp.git
APP_ROOT=/var/www/myapp
BRANCH=main
KEEP_RELEASES=5
LISTEN=/run/myapp.sock
SERVER_NAME=localhost
NGINX_SITE=true

# read_conf FILE: take KEY=value lines for the keys above, ignoring the rest;
# values are data, never evaluated as shell.
read_conf() {
	[ -r "$1" ] || return 0
	while IFS='=' read -r key value; do
		case $key in
		APP | DEPLOY_USER | REPO | APP_ROOT | BRANCH | KEEP_RELEASES | LISTEN | SERVER_NAME | NGINX_SITE)
			value=${value#\"}
			value=${value%\"}
			eval "$key=\$value"
			;;
		esac
	done <"$1"
}

read_conf "$ZDD_ETC/myapp-zdd.conf"
read_conf "$ZDD_ETC/server.conf"

say() { printf 'myapp-zdd: %s\n' "$*"; }
die() {
	printf 'myapp-zdd: error: %s\n' "$*" >&2
	exit 1
}

# as_deploy CMD…: run a command as the deploy user (files it makes are theirs).
as_deploy() { runuser -u "$DEPLOY_USER" -- "$@"; }

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
# HOST:PORT).
upstream_address() {
	case $LISTEN in
	/*) printf 'unix:%s' "$LISTEN" ;;
	*:*) printf '%s' "$LISTEN" ;;
	*) printf '127.0.0.1:%s' "$LISTEN" ;;
	esac
}

validate_listen() {
	case $LISTEN in
	/run/*.sock) ;;
	*[!0-9]*:* | *:*[!0-9]* | *:) case $LISTEN in
		\[*\]:[0-9]* | [0-9]*.[0-9]*:[0-9]*) ;;
		*) die "LISTEN must be a UNIX socket path under /run, PORT or HOST:PORT, not '$LISTEN'" ;;
		esac ;;
	*:[0-9]* | [0-9]*) ;;
	*) die "LISTEN must be a UNIX socket path under /run, PORT or HOST:PORT, not '$LISTEN'" ;;
	esac
}
