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

# The checks of every setting, in one place: the settings step runs them
# before writing a value, and every step runs them on what it read, so a
# value edited into the files is refused before anything is generated.
check_listen() {
	case $1 in
	*[!A-Za-z0-9._:/[\]-]* | *..* | '') return 1 ;;
	/run/*.sock) return 0 ;;
	/*) return 1 ;;
	\[*\]:*) port=${1##*]:} ;;
	*:*:*) return 1 ;;
	*:*) port=${1##*:} ;;
	*) port=$1 ;;
	esac
	case $port in '' | *[!0-9]* | 0*) return 1 ;; esac
	[ "$port" -le 65535 ]
}
check_setting() { # check_setting KEY VALUE: exits with a clear message when bad
	case $1 in
	APP | DEPLOY_USER)
		case $2 in [a-z]*[!a-z0-9_-]* | [!a-z]* | '') die "$1: lower-case letters, digits, '-' and '_', not '$2'" ;; esac
		[ ${#2} -le 32 ] || die "$1: at most 32 characters, not '$2'"
		;;
	REPO | APP_ROOT)
		case $2 in
		*[!A-Za-z0-9._/-]* | *..* | */ | *//*) die "$1: an absolute path of letters, digits, '.', '_', '-', not '$2'" ;;
		/?*/?*) ;;
		*) die "$1: an absolute path below a top-level directory, not '$2'" ;;
		esac
		;;
	BRANCH)
		case $2 in -*) die "BRANCH: not a branch name: '$2'" ;; esac
		git check-ref-format --branch "$2" >/dev/null 2>&1 || die "BRANCH: not a branch name: '$2'"
		;;
	KEEP_RELEASES)
		case $2 in '' | *[!0-9]* | 0 | 1 | ????*) die "KEEP_RELEASES: must be a number from 2 to 999, not '$2'" ;; esac
		;;
	LISTEN)
		check_listen "$2" || die "LISTEN must be a UNIX socket path /run/NAME.sock, PORT or HOST:PORT, not '$2'"
		;;
	SERVER_NAME)
		case $2 in *[!A-Za-z0-9._\ *-]* | '' | ' '* | *' ') die "SERVER_NAME: host names separated by spaces, not '$2'" ;; esac
		;;
	NGINX_SITE)
		case $2 in true | false) ;; *) die "NGINX_SITE: true or false, not '$2'" ;; esac
		;;
	*) die "unknown setting '$1'" ;;
	esac
}
check_settings() {
	for key in APP DEPLOY_USER REPO APP_ROOT BRANCH KEEP_RELEASES LISTEN SERVER_NAME NGINX_SITE; do
		eval "check_setting $key \"\$$key\""
	done
}
