# shellcheck shell=bash
# The cached VM image: a partition-less ext4 disk with extlinux, built from a
# debootstrap rootfs that autopkgtest's setup-testbed prepared. One per
# (suite, mirror, packages, size, recipe, setup-testbed); built in a temporary
# directory and renamed into place, so an interrupted build leaves no entry.

# shellcheck disable=SC2034 # BUILD_TMP is read by the main script's trap
BUILD_TMP="" IMAGE_ENTRY="" IMAGE_LOCK_FD="" ROOT=""

# Bump when the build steps below change: every cached image is rebuilt.
RECIPE_VERSION=4

SETUP_TESTBED=/usr/share/autopkgtest/setup-commands/setup-testbed

# What every image holds: a booting systemd with a kernel that has 9p
# (linux-image-amd64; the cloud kernel lacks it), polkit, and what
# autopkgtest's testbed side uses (python3, apt-ftparchive, dpkg-dev).
BASE_PACKAGES="linux-image-amd64 initramfs-tools systemd systemd-sysv udev kmod dbus
libpam-systemd polkitd e2fsprogs procps iproute2 apt-utils ca-certificates python3
dpkg-dev eatmydata curl"

# debootstrap installs what setup-testbed expects to find (systemd to give the
# root shell a unit, a kernel for its update-initramfs); apt installs the rest
# (debootstrap's resolver knows no virtual packages).
DEBOOTSTRAP_INCLUDE=systemd,systemd-sysv,udev,kmod,initramfs-tools,linux-image-amd64

cache_dir() { printf '%s\n' "${VM_CACHE:-/var/cache/myapp-zdd-vm}"; }

# The sorted package list: base, --packages, --packages-file (one a line,
# '#' comments).
package_list() {
	local extra=$1 file
	shift
	{
		printf '%s\n' "$BASE_PACKAGES" | tr -s ' ' '\n'
		printf '%s\n' "$extra" | tr -s ',[:space:]' '\n'
		for file in "$@"; do sed -e 's/#.*//' "$file" | tr -s ',[:space:]' '\n'; done
	} | grep -v '^$' | LC_ALL=C sort -u
}

check_package_names() {
	local bad
	bad=$(printf '%s\n' "$1" | grep -vE '^[a-z0-9][a-z0-9.+-]+$' || true)
	[ -z "$bad" ] || die "bad package name(s): $(printf '%s' "$bad" | tr '\n' ' ')"
}

# The key text; its hash names the cache entry.
image_recipe() {
	local suite=$1 mirror=$2 packages=$3 size=$4
	printf 'recipe=%s\nsuite=%s\nmirror=%s\nsize=%s\nsetup-testbed=%s\npackages=%s\n' \
		"$RECIPE_VERSION" "$suite" "$mirror" "$size" \
		"$(sha256sum <"$SETUP_TESTBED" | cut -c1-16)" \
		"$(printf '%s' "$packages" | tr '\n' ' ')"
}

image_entry() {
	local suite=$1 recipe=$2
	printf '%s/%s-%s\n' "$(cache_dir)" "$suite" \
		"$(printf '%s' "$recipe" | sha256sum | cut -c1-16)"
}

# Run "$@" in a private mount and PID namespace with /proc, /sys, /dev mounted
# in the rootfs $ROOT: whatever it mounts or starts dies with it, even when we
# are interrupted (--kill-child), so no mount is left on the host.
in_rootfs_ns() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	unshare --mount --pid --fork --kill-child --propagation private -- sh -eu -c '
		root=$1; shift
		mount -t proc proc "$root/proc"
		mount --rbind /sys "$root/sys"
		mount --rbind /dev "$root/dev"
		exec "$@"
	' in_rootfs_ns "$ROOT" "$@"
}

in_chroot() {
	in_rootfs_ns chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

# Run a build step with its output in $tmp/build.log; show its tail on failure.
build_step() {
	local what=$1
	shift
	log "$what"
	printf '\n=== %s\n' "$what" >>"$BUILD_TMP/build.log"
	wait_fg "$@" >>"$BUILD_TMP/build.log" 2>&1 ||
		{ tail -n 40 "$BUILD_TMP/build.log" >&2; die "image build failed at: $what (log above)"; }
}

# The guest's own configuration: network by DHCP from qemu's user network
# (the archive may or may not be reachable through it; everything the tests
# need is installed already), root on the whole disk, a fresh machine id.
configure_guest() {
	local suite=$1
	mkdir -p "$ROOT/etc/systemd/network"
	printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' >"$ROOT/etc/systemd/network/50-vm.network"
	ln -sf /lib/systemd/system/systemd-networkd.service \
		"$ROOT/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
	rm -f "$ROOT/etc/resolv.conf" "$ROOT/etc/resolv.conf.vmdebootstrap"
	printf 'nameserver 10.0.2.3\n' >"$ROOT/etc/resolv.conf"
	printf '/dev/vda / ext4 defaults,errors=remount-ro 0 1\n' >"$ROOT/etc/fstab"
	printf 'vm-%s\n' "$suite" >"$ROOT/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\tvm-%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
		"$suite" >"$ROOT/etc/hosts"
	: >"$ROOT/etc/machine-id"
	rm -f "$ROOT/var/lib/dbus/machine-id" "$ROOT/usr/sbin/policy-rc.d"
}

# extlinux into the filesystem's own boot sector: the disk has no partition
# table, and SeaBIOS boots its first sector (vmdb2 needs device mapper, which
# these machines lack). ext4 without 64bit: extlinux cannot read it otherwise.
install_bootloader() {
	local image=$1 kernel=$2 initrd=$3 mnt=$BUILD_TMP/mnt
	mkdir -p "$mnt"
	# The console= that comes last is /dev/console: autopkgtest waits for the
	# login prompt on ttyS0 and drives a root shell on ttyS1.
	# shellcheck disable=SC2016 # expanded by the inner shell
	build_step "installing extlinux" \
		unshare --mount --propagation private -- sh -eu -c '
			image=$1 mnt=$2 kernel=$3 initrd=$4
			mount -o loop "$image" "$mnt"
			mkdir -p "$mnt/boot/extlinux"
			cat >"$mnt/boot/extlinux/extlinux.conf" <<CONF
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  LINUX $kernel
  INITRD $initrd
  APPEND root=/dev/vda rw net.ifnames=0 console=tty0 console=hvc0 console=ttyS0
CONF
			extlinux --install "$mnt/boot/extlinux"
			umount "$mnt"
		' install_bootloader "$image" "$mnt" "$kernel" "$initrd"
	rmdir "$mnt"
}

# Disk size: the rootfs plus room for the tests (dependencies, builds, logs).
image_size() {
	local mib
	if [ "$OPT_SIZE" != auto ]; then printf '%s\n' "$OPT_SIZE"; return; fi
	mib=$(du -sm --one-file-system "$ROOT" | cut -f1)
	printf '%sM\n' $(((mib * 5 / 4 + 2048 + 255) / 256 * 256))
}

build_image() {
	local suite=$1 mirror=$2 packages=$3 recipe=$4 entry=$5
	local tmp started kernel initrd size
	started=$(date +%s)
	tmp=$(mktemp -d "$(cache_dir)/.build-${entry##*/}.XXXXXX")
	BUILD_TMP=$tmp # removed by the exit trap if we are interrupted
	ROOT=$tmp/rootfs
	log "building the $suite image from $mirror in $tmp (log: build.log; takes minutes)"

	build_step "debootstrap $suite" \
		unshare --mount --pid --fork --kill-child --propagation private -- \
		debootstrap --variant=minbase --include="$DEBOOTSTRAP_INCLUDE" "$suite" "$ROOT" "$mirror"
	# Maintainer scripts must not start daemons in the chroot (an nginx
	# binding the host's port 80).
	printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
	chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
	# setup-testbed: root shell on ttyS1, apt sources, virtio_console in the
	# initramfs (AUTOPKGTEST_BUILD_QEMU), dist-upgrade. It runs first because
	# it purges "bloat" (git, polkitd via autoremove…) that we may want.
	build_step "running autopkgtest's setup-testbed" \
		in_rootfs_ns env AUTOPKGTEST_BUILD_QEMU=1 MIRROR="$mirror" RELEASE="$suite" \
		DEBIAN_FRONTEND=noninteractive sh "$SETUP_TESTBED" "$ROOT"
	cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
	# apt-get clean drops apt's binary cache: rebuild it here once, or every
	# test's dependency install rebuilds it under TCG.
	# shellcheck disable=SC2086 # word splitting of the package list is intended
	build_step "installing $(printf '%s\n' "$packages" | wc -l) packages" \
		in_chroot sh -eu -c 'apt-get update -q && apt-get install -y -q "$@" && apt-get clean && apt-cache gencaches' sh $packages
	configure_guest "$suite"
	# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
	in_chroot dpkg-query -W -f '${Package} ${Version}\n' >"$tmp/packages.txt"

	kernel=$(cd "$ROOT" && find boot -maxdepth 1 -name 'vmlinuz-*' | LC_ALL=C sort -V | tail -n1)
	initrd=boot/initrd.img-${kernel#boot/vmlinuz-}
	if [ -z "$kernel" ] || [ ! -f "$ROOT/$initrd" ]; then
		die "no kernel/initrd in the $suite rootfs"
	fi
	size=$(image_size)
	build_step "mkfs.ext4 $size image from the rootfs" \
		mkfs.ext4 -q -F -O ^64bit -L vmroot -d "$ROOT" "$tmp/image.raw" "$size"
	install_bootloader "$tmp/image.raw" "/$kernel" "/$initrd"
	rm -rf --one-file-system "$ROOT"

	printf '%s' "$recipe" >"$tmp/recipe"
	mv -T "$tmp" "$entry"
	BUILD_TMP=""
	log "built $entry/image.raw in $(($(date +%s) - started)) s" \
		"(size $size, $(du -sh "$entry/image.raw" | cut -f1) used)"
}

# Build (or reuse) the image for SUITE; set IMAGE_ENTRY to its cache entry
# (the disk is $IMAGE_ENTRY/image.raw). Keeps a shared lock on it until exit.
ensure_image() {
	local suite=$1 mirror packages recipe entry stale
	mirror=$(resolve_mirror)
	packages=$(package_list "$OPT_PACKAGES" "${OPT_PACKAGES_FILES[@]}")
	check_package_names "$packages"
	recipe=$(image_recipe "$suite" "$mirror" "$packages" "$OPT_SIZE")
	entry=$(image_entry "$suite" "$recipe")
	mkdir -p "$(cache_dir)"
	# Users hold the entry's lock shared (clean takes it exclusively); a
	# builder exclusively, so a concurrent run waits, then reuses its result.
	exec {IMAGE_LOCK_FD}>"$entry.lock"
	flock -s -w 3600 "$IMAGE_LOCK_FD" || die "timed out waiting for $entry.lock"
	if [ ! -f "$entry/recipe" ]; then
		flock -x -w 3600 "$IMAGE_LOCK_FD" || die "timed out waiting for $entry.lock"
		if [ ! -f "$entry/recipe" ]; then
			# We hold this entry's lock: any build directory of it is abandoned.
			for stale in "$(cache_dir)/.build-${entry##*/}".*; do
				[ ! -e "$stale" ] || rm -rf --one-file-system "$stale"
			done
			build_image "$suite" "$mirror" "$packages" "$recipe" "$entry"
		fi
		flock -s "$IMAGE_LOCK_FD"
	else
		log "reusing $entry/image.raw"
	fi
	IMAGE_ENTRY=$entry
}
