# shellcheck shell=bash
# Run autopkgtest against the cached image under qemu: an overlay per run
# keeps the image clean; TCG unless this host has real KVM.

# shellcheck disable=SC2034 # RUN_TMP is read by the main script's trap
RUN_TMP="" ARTIFACTS_SAVED=no

# Real KVM: the CPU has vmx/svm and /dev/kvm is not the PVM module (which
# cannot boot a stock Debian kernel). VM_ACCEL=tcg|kvm overrides.
detect_accel() {
	case "${VM_ACCEL:-}" in
	tcg | kvm) printf '%s\n' "$VM_ACCEL"; return ;;
	'') ;;
	*) die "VM_ACCEL wants tcg or kvm, got '$VM_ACCEL'" ;;
	esac
	if [ -c /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo &&
		[ ! -d /sys/module/kvm_pvm ]; then
		printf 'kvm\n'
	else
		printf 'tcg\n'
	fi
}

# Stop the qemu of this run if autopkgtest left it behind. The pid comes from
# our wrapper; check it still is that qemu (its command line names our
# overlay directory) before signalling it.
stop_run_qemu() {
	local pid
	[ -n "$RUN_TMP" ] && [ -s "$RUN_TMP/qemu.pid" ] || return 0
	pid=$(cat "$RUN_TMP/qemu.pid")
	case "$pid" in '' | *[!0-9]*) return 0 ;; esac
	[ -r "/proc/$pid/cmdline" ] || return 0
	if { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF "$RUN_TMP/"; then
		log "stopping qemu (pid $pid) left running"
		stop_pid "$pid"
	fi
}

save_artifacts() {
	[ -n "$OPT_ARTIFACTS" ] && [ "$ARTIFACTS_SAVED" = no ] || return 0
	[ -n "$RUN_TMP" ] && [ -d "$RUN_TMP/out" ] || return 0
	local dest n=1
	ARTIFACTS_SAVED=yes
	mkdir -p "$OPT_ARTIFACTS"
	# Never overwrite an earlier run's output: number the later ones.
	dest=$OPT_ARTIFACTS/$ARTIFACTS_NAME
	while [ -e "$dest" ]; do n=$((n + 1)); dest=$OPT_ARTIFACTS/$ARTIFACTS_NAME-$n; done
	cp -a "$RUN_TMP/out" "$dest"
	log "autopkgtest output in $dest"
}

# hh:mm:ss of two log stamps -> seconds between them (same day or the next).
seconds_between() {
	local a b
	a=$(printf '%s\n' "$1" | awk -F: '{ print $1 * 3600 + $2 * 60 + $3 }')
	b=$(printf '%s\n' "$2" | awk -F: '{ print $1 * 3600 + $2 * 60 + $3 }')
	printf '%s\n' $(((b - a + 86400) % 86400))
}

# Boot time (start to the first command in the testbed) and per-test wall
# time from autopkgtest's log: from "test NAME: preparing testbed" (reset,
# dependency install) to its results line. The results line may follow the
# summary's "NAME PASS" on the same line (the two streams interleave).
print_test_times() {
	local logf=$1 first booted
	[ -f "$logf" ] || return 0
	first=$(sed -n -E 's/^autopkgtest \[([0-9:]+)\]: starting date and time.*/\1/p' "$logf" | head -n1)
	booted=$(sed -n -E 's/^autopkgtest \[([0-9:]+)\]: testbed dpkg architecture.*/\1/p' "$logf" | head -n1)
	if [ -n "$first" ] && [ -n "$booted" ]; then
		log "first boot: $(seconds_between "$first" "$booted") s (qemu start to a shell in the VM)"
	fi
	sed -n -E 's/^.*autopkgtest \[([0-9:]+)\]: test ([^:]+): (preparing testbed|.*results - -).*/\1 \2 \3/p' "$logf" |
		while read -r stamp name what; do
			case "$what" in
			preparing*) printf '%s %s\n' "$name" "$stamp" >>"$RUN_TMP/starts" ;;
			*)
				start=$(awk -v n="$name" '$1 == n { s = $2 } END { print s }' "$RUN_TMP/starts" 2>/dev/null)
				[ -z "$start" ] || log "test $name: $(seconds_between "$start" "$stamp") s (reset + install + run)"
				;;
			esac
		done
}

# "N passed, N failed, N skipped" from autopkgtest's summary file.
print_summary() {
	local summary=$1 pass fail skip
	[ -f "$summary" ] || { log "no autopkgtest summary (testbed failure?)"; return 0; }
	sed 's/^/  /' "$summary" >&2
	pass=$(awk '$2 == "PASS" { n++ } END { print n + 0 }' "$summary")
	fail=$(awk '$2 == "FAIL" || $2 == "FLAKY" { n++ } END { print n + 0 }' "$summary")
	skip=$(awk '$2 == "SKIP" { n++ } END { print n + 0 }' "$summary")
	log "$pass passed, $fail failed, $skip skipped"
}

cmd_run() {
	local suite=$1 accel started status=0 verdict attempt failed
	[ -n "$OPT_SRC" ] || die "run needs --src DIR (the unpacked source with debian/tests)"
	[ -f "$OPT_SRC/debian/tests/control" ] || die "no debian/tests/control in $OPT_SRC"
	[ ${#OPT_DEBS[@]} -gt 0 ] || die "run needs at least one --deb FILE"
	ensure_image "$suite"
	RUN_TMP=$(mktemp -d "${TMPDIR:-/tmp}/myapp-vm-run.XXXXXX")
	ARTIFACTS_NAME=autopkgtest-vm-$suite
	mkdir "$RUN_TMP/overlay"
	accel=$(detect_accel)
	log "running autopkgtest in a $suite VM ($accel, $OPT_CPUS CPUs, $OPT_RAM MiB; timeout $OPT_TIMEOUT s)"
	started=$(date +%s)
	attempt=1
	while :; do
		status=0
		# timeout runs autopkgtest in its own process group and kills all
		# of it (the virt server and qemu too) when the time is up.
		MYAPP_VM_ACCEL=$accel MYAPP_VM_PIDFILE=$RUN_TMP/qemu.pid \
			wait_fg timeout --kill-after=60 "$OPT_TIMEOUT" \
			autopkgtest --no-built-binaries --output-dir "$RUN_TMP/out" \
			"${OPT_AUTOPKGTEST_ARGS[@]}" "$OPT_SRC/" "${OPT_DEBS[@]}" \
			-- qemu --qemu-command="$VM_LIB/qemu-system-x86_64" \
			--cpus "$OPT_CPUS" --ram-size "$OPT_RAM" --timeout-reboot "$OPT_BOOT_TIMEOUT" \
			--overlay-dir "$RUN_TMP/overlay" "$IMAGE_ENTRY/image.raw" || status=$?
		stop_run_qemu
		# Exit 16 is the testbed, not a test: under TCG on a loaded host a
		# revert (reboot) between tests has been seen to lose the VM
		# ("unexpected eof from the testbed"). Retry on a fresh VM; a test
		# failure (exit 4) is never retried.
		if [ "$status" -ne 16 ] || [ "$attempt" -gt "$OPT_RETRIES" ]; then break; fi
		log "testbed failure on attempt $attempt (autopkgtest exit 16): retrying on a fresh VM"
		[ ! -d "$RUN_TMP/out" ] || mv "$RUN_TMP/out" "$RUN_TMP/testbed-failure-attempt-$attempt"
		attempt=$((attempt + 1))
	done
	if [ -d "$RUN_TMP/out" ]; then
		for failed in "$RUN_TMP"/testbed-failure-attempt-*; do
			[ ! -d "$failed" ] || mv "$failed" "$RUN_TMP/out/"
		done
	fi
	print_test_times "$RUN_TMP/out/log"
	print_summary "$RUN_TMP/out/summary"
	save_artifacts
	case "$status" in
	0) verdict="all tests passed" ;;
	2) verdict="all tests passed, some skipped" status=0 ;;
	4) verdict="a test failed" ;;
	8) verdict="no tests in this package" ;;
	12) verdict="erroneous package (installing it or its test dependencies failed)" ;;
	16) verdict="testbed failure (the VM did not boot or broke)" ;;
	124 | 137) verdict="timed out after $OPT_TIMEOUT s" ;;
	*) verdict="autopkgtest exited $status" ;;
	esac
	log "$suite VM: $verdict ($(($(date +%s) - started)) s, autopkgtest exit $status)"
	[ "$status" -eq 0 ] || return 1
}
