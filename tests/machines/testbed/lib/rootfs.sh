# shellcheck shell=bash
# The cached rootfs: debootstrap once per (suite, mirror, packages, recipe),
# build in a temporary directory and rename it into place, so an interrupted
# build never leaves a cache entry behind.

# shellcheck disable=SC2034 # BUILD_TMP is read by the main script's trap
BUILD_TMP="" ROOTFS_ENTRY="" CHROOT_CMD=()

# Bump when the build steps below change: every cached rootfs is rebuilt.
RECIPE_VERSION=1

cache_dir() { printf '%s\n' "${TESTBED_CACHE:-/var/cache/myapp-zdd-testbed}"; }

# The key text; its hash names the cache entry.
rootfs_recipe() {
	local suite=$1 mirror=$2 packages=$3
	printf 'recipe=%s\nsuite=%s\nmirror=%s\npackages=%s\n' \
		"$RECIPE_VERSION" "$suite" "$mirror" "$(printf '%s' "$packages" | tr '\n' ' ')"
}

rootfs_entry() {
	local suite=$1 recipe=$2
	printf '%s/%s-%s\n' "$(cache_dir)" "$suite" \
		"$(printf '%s' "$recipe" | sha256sum | cut -c1-16)"
}

# Set CHROOT_CMD to the prefix that runs a command chrooted into $1 with
# /proc, /sys, /dev mounted, in a private mount and PID namespace: whatever it
# mounts or starts dies with it (--kill-child: also when we are interrupted).
# policy-rc.d keeps maintainer scripts from starting daemons meanwhile (e.g. an
# nginx postinst binding the host's port 80).
chroot_cmd() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	CHROOT_CMD=(unshare --mount --pid --fork --kill-child --propagation private -- sh -eu -c '
		root=$1; shift
		mount -t proc proc "$root/proc"
		mount --rbind /sys "$root/sys"
		mount --rbind /dev "$root/dev"
		exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
	' in_chroot "$1")
}

build_rootfs() {
	local suite=$1 mirror=$2 packages=$3 recipe=$4 entry=$5
	local tmp started base extra
	started=$(date +%s)
	tmp=$(mktemp -d "$(cache_dir)/.build-${entry##*/}.XXXXXX")
	BUILD_TMP=$tmp # removed by the caller's exit trap if we are interrupted
	# debootstrap only what boots; its resolver knows no virtual packages
	# (polkitd needs default-logind | logind), so apt installs the rest.
	base=systemd,systemd-sysv
	extra=$(printf '%s\n' "$packages" | grep -vxE 'systemd|systemd-sysv' | tr '\n' ' ' || true)

	log "building $suite rootfs from $mirror (this takes a minute or two)"
	# debootstrap mounts /proc etc. in the target: keep those in a private
	# namespace so an interrupted build leaves no mount on the host.
	wait_fg unshare --mount --pid --fork --kill-child --propagation private -- \
		debootstrap --variant=minbase --include="$base" "$suite" "$tmp/rootfs" "$mirror" \
		>"$tmp/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$tmp/debootstrap.log" >&2; die "debootstrap $suite failed (log above)"; }

	printf '#!/bin/sh\nexit 101\n' >"$tmp/rootfs/usr/sbin/policy-rc.d"
	chmod 0755 "$tmp/rootfs/usr/sbin/policy-rc.d"
	cp /etc/resolv.conf "$tmp/rootfs/etc/resolv.conf" 2>/dev/null || true
	chroot_cmd "$tmp/rootfs"
	if [ -n "$extra" ]; then
		log "installing into the rootfs: $extra"
		# shellcheck disable=SC2086,SC2016 # split the list here; expand it in the chroot
		wait_fg "${CHROOT_CMD[@]}" sh -eu -c 'apt-get update -q && apt-get satisfy -y -q "$(echo "$@" | sed "s/ /, /g")"' sh $extra \
			>"$tmp/install.log" 2>&1 ||
			{ tail -n 30 "$tmp/install.log" >&2; die "cannot install extra packages into $suite rootfs (log above)"; }
	fi
	"${CHROOT_CMD[@]}" apt-get clean
	rm -f "$tmp/rootfs/usr/sbin/policy-rc.d" "$tmp/rootfs/etc/resolv.conf"

	# The container has no network: apt must not try the archive. Installed
	# packages (dpkg status) are all `apt install ./x.deb` needs.
	mv "$tmp/rootfs/etc/apt/sources.list" "$tmp/rootfs/etc/apt/sources.list.testbed-offline"
	: >"$tmp/rootfs/etc/apt/sources.list"
	rm -rf "$tmp/rootfs/var/lib/apt/lists/"*
	printf 'testbed\n' >"$tmp/rootfs/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\ttestbed\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
		>"$tmp/rootfs/etc/hosts"
	: >"$tmp/rootfs/etc/fstab"
	# Let systemd make a fresh machine id at each boot.
	: >"$tmp/rootfs/etc/machine-id"

	printf '%s' "$recipe" >"$tmp/recipe"
	# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
	"${CHROOT_CMD[@]}" dpkg-query -W -f '${Package} ${Version}\n' >"$tmp/packages.txt"
	mv -T "$tmp" "$entry"
	BUILD_TMP="" ROOTFS_ENTRY=""
	log "built $entry in $(($(date +%s) - started)) s ($(du -sh "$entry/rootfs" | cut -f1))"
}

# Each package list is its own entry (~300 MB): drop the suite's entries
# unused for TESTBED_CACHE_DAYS (7) days. Every use rewrites the entry's lock
# file, whose age is therefore the time since last use.
prune_rootfs() {
	local suite=$1 keep=$2 old fd
	for old in "$(cache_dir)/$suite"-*.lock; do
		[ -f "$old" ] || continue
		[ "${old%.lock}" != "$keep" ] || continue
		[ -n "$(find "$old" -maxdepth 0 -mtime +"${TESTBED_CACHE_DAYS:-7}")" ] || continue
		exec {fd}>>"$old"
		if flock -n "$fd"; then
			log "removing unused rootfs ${old%.lock}"
			remove_tree "${old%.lock}"
			rm -f "$old"
		fi
		exec {fd}>&-
	done
}

# Build (or reuse) the rootfs for SUITE with PACKAGES; set ROOTFS_ENTRY to
# its cache entry (the rootfs is $ROOTFS_ENTRY/rootfs).
ensure_rootfs() {
	local suite=$1 mirror=$2 packages=$3 recipe entry lockfile stale
	recipe=$(rootfs_recipe "$suite" "$mirror" "$packages")
	entry=$(rootfs_entry "$suite" "$recipe")
	mkdir -p "$(cache_dir)"
	lockfile="$entry.lock"
	# One builder per entry; a concurrent run waits, then reuses its result.
	exec {ROOTFS_LOCK_FD}>"$lockfile"
	flock -w 900 "$ROOTFS_LOCK_FD" || die "timed out waiting for $lockfile"
	if [ ! -f "$entry/recipe" ]; then
		prune_rootfs "$suite" "$entry"
		# We hold this entry's lock: any build directory of it is abandoned.
		for stale in "$(cache_dir)/.build-${entry##*/}".*; do
			[ ! -e "$stale" ] || remove_tree "$stale"
		done
		build_rootfs "$suite" "$mirror" "$packages" "$recipe" "$entry"
	fi
	# Keep a shared lock while the caller uses it (clean takes it exclusively).
	flock -s "$ROOTFS_LOCK_FD"
	ROOTFS_ENTRY=$entry
}
