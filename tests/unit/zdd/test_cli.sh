#!/bin/sh
# shellcheck disable=SC2319 # `[ cond ]; ok $? "what"` records the condition on purpose
# Command-line tests of myapp-zdd (TAP): real git pushes through the real
# pre-receive hook, real builds, a stand-in systemctl (fake-systemctl)
# that runs each release's ./start, and a tiny Python app that serves its
# REVISION on the probe socket.  Proves the handover's sequencing, failure
# paths, rollback, restart, pruning, locking and history without systemd;
# the real units are proven by the package's autopkgtest.
# The tiny app is a stand-in, not the example app (tests/apps/python, checked
# by test_contract_app.py): fake-systemctl passes no sockets, so it binds
# PROBE_SOCKET itself, which the release contract forbids.
#
# usage: test_cli.sh PATH-TO-myapp-zdd
set -eu

ZDD=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
HOOK=$HERE/../../../hooks/pre-receive
T=$(mktemp -d /tmp/zdd-cli.XXXXXX)
n=0
failed=0
# Sanitizer reports (the binary under test is built with ASan/UBSan) go to
# files, checked at the end: an exit status alone could hide them.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:log_path=$T/sanitizer"
UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:log_path=$T/sanitizer"
export ASAN_OPTIONS UBSAN_OPTIONS
# Commits need an identity; a fresh machine (a CI testbed) has none.
export GIT_AUTHOR_NAME=zdd-test GIT_AUTHOR_EMAIL=zdd-test@localhost
export GIT_COMMITTER_NAME=zdd-test GIT_COMMITTER_EMAIL=zdd-test@localhost

cleanup() {
	for p in "$T"/state/*.pid "$T"/*.pid; do
		if [ -f "$p" ]; then kill "$(cat "$p")" 2>/dev/null || true; fi
	done
	if [ "$failed" -eq 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$T"; else echo "# left $T"; fi
}
trap cleanup EXIT INT TERM

ok() { # cond-exit-status description
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
		sed 's/^/# /' "$T/out" 2>/dev/null | tail -n 30 || true
	fi
}

check() { # description command...
	desc=$1; shift
	if "$@" > /dev/null 2>&1; then ok 0 "$desc"; else ok 1 "$desc"; fi
}

# --- fixture -------------------------------------------------------------
ROOT=$T/www
RUN=$T/run
mkdir -p "$ROOT/shared" "$RUN" "$T/state"
echo "SECRET=s3" > "$ROOT/shared/.env"
cp "$HERE/fake-systemctl" "$T/fake-systemctl"
cat > "$T/fake.env" <<EOF
APP=myapp
APP_ROOT=$ROOT
RUN_DIR=$RUN
STATE=$T/state
ZDD=$ZDD
CONF=$T/zdd.conf
CACHE=$T/cache
EOF
cat > "$T/fake-journalctl" <<'EOF'
#!/bin/sh
# the units are the arguments after each -u, and the lines after -n
units= lines= follow=
while [ $# -gt 0 ]; do
	case $1 in -u) units="$units${units:+ }$2"; shift ;; -n) lines=$2; shift ;; --follow) follow=" follow" ;; esac
	shift
done
echo "journal of $units: app said goodbye (-n $lines$follow)"
# following: one more line a while later (a reader that went is gone by then)
[ -z "$follow" ] || { sleep 6; echo "journal of $units: a later line"; }
EOF
chmod +x "$T/fake-systemctl" "$T/fake-journalctl"

CONF=$T/zdd.conf
cat > "$CONF" <<EOF
# test configuration
APP=myapp
DEPLOY_USER=root
REPO=$T/repo.git
APP_ROOT=$ROOT
KEEP_RELEASES=3
BUILD_TIMEOUT=20
READY_TIMEOUT=10
HEALTH_TIMEOUT=2
LOCK_TIMEOUT=1
PROBE_SOCKET_DIR=$RUN
SYSTEMCTL=$T/fake-systemctl
JOURNALCTL=$T/fake-journalctl
EOF

git init -q --bare "$T/repo.git"
# The real hook, pointed at the binary under test and this config.
sed "s|/usr/bin/myapp-zdd hook|$ZDD --config $CONF hook|" "$HOOK" \
    > "$T/repo.git/hooks/pre-receive"
chmod +x "$T/repo.git/hooks/pre-receive"

W=$T/work
git init -q "$W"
git -C "$W" checkout -q -b main
cat > "$W/app.py" <<'EOF'
#!/usr/bin/python3
# Test app: serves its REVISION on $PROBE_SOCKET; flags in the release
# make it misbehave on purpose.
import os, socket, sys
path = os.environ["PROBE_SOCKET"]
if os.path.exists("exit-at-start"):
    sys.exit(1)
if os.path.exists("main-fails") and path.endswith("-probe.sock"):
    sys.exit(1)
if os.path.exists("web2-fails") and path.endswith("-probe-web-2.sock"):
    sys.exit(1)
rev = open("REVISION").read().strip().encode()
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(16)
while True:
    c, _ = s.accept()
    c.recv(4096)
    code = 503 if os.path.exists("unhealthy") else 200
    c.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n"
              b"Connection: close\r\n\r\n%s" % (code, len(rev), rev))
    c.close()
EOF
chmod +x "$W/app.py"
ln -s app.py "$W/start"
printf 'all:\n\techo built > built.txt\n' > "$W/Makefile"
git -C "$W" add -A
git -C "$W" remote add deploy "$T/repo.git"

commit() { # message [file-to-add]
	if [ $# -gt 1 ]; then echo x > "$W/$2"; git -C "$W" add "$2"; fi
	git -C "$W" -c user.name=t -c user.email=t@example.org \
	    commit -q --allow-empty -m "$1"
}
uncommit_flag() { git -C "$W" rm -q "$1"; commit "drop $1"; }
push() { git -C "$W" push deploy "$@" > "$T/out" 2>&1; }
zdd() { "$ZDD" --config "$CONF" "$@" > "$T/out" 2>&1; }
# Make HEAD known to the repo without deploying it (a non-deploy branch),
# then deploy it by hand: `myapp-zdd deploy SHA`, to see the exit code.
deploy_head() {
	git -C "$W" push -q -f deploy HEAD:refs/heads/stage > /dev/null 2>&1
	zdd deploy "$(git -C "$W" rev-parse HEAD)"
}
current() { readlink "$ROOT/current" | sed 's|releases/||'; }
previous() { readlink "$ROOT/previous" | sed 's|releases/||'; }
served() {
	curl -s --max-time 2 --unix-socket "$RUN/myapp-probe.sock" \
	    http://localhost/healthz
}
nreleases() { find "$ROOT/releases" -mindepth 1 -maxdepth 1 | wc -l; }
has() { grep -q -- "$1" "$T/out"; }
side_sockets() { find "$RUN" -name 'myapp-probe-*.sock' | wc -l; }
# ps_row TYPE UNIT RELEASE STATE: ps printed that row, with a PID and a SINCE
# (a dash for a unit without a process)
ps_row() {
	awk -v t="$1" -v u="$2" -v r="$3" -v s="$4" '
	    $1 == t && $2 == u && $3 == r && $4 == s &&
	    (s ~ /^active/ ? $5 ~ /^[0-9]+$/ && $6 ~ /^20[0-9][0-9]-[01][0-9]-[0-3][0-9]$/ && $8 == "UTC" : 1) { f = 1 }
	    END { exit !f }' "$T/out"
}
ps_rows() { grep -c "^$1 " "$T/out"; } # TYPE: how many rows of that type

# From here on every check must run even when an earlier one failed:
# under -e the failing last command of `a && b` would end the script.
set +e

# --- usage and configuration ---------------------------------------------
rc=0; "$ZDD" --help > "$T/out" 2>&1 || rc=$?
ok "$rc" "--help exits 0"
check "--help documents exit codes" has "3 deploy lock timeout"
rc=0; "$ZDD" --version > "$T/out" 2>&1 || rc=$?
ok "$rc" "--version exits 0"
rc=0; "$ZDD" frobnicate > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && has "unknown command"; ok $? "unknown command -> exit 2"
rc=0; "$ZDD" --config "$T/nope.conf" releases > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ]; ok $? "missing --config file -> exit 2"
echo "KEEP_RELEASES=many" > "$T/bad.conf"
rc=0; "$ZDD" --config "$T/bad.conf" releases > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && has "bad.conf:1: KEEP_RELEASES: 'many'"
ok $? "bad config value -> exit 2 naming file, line, key"

# --- ps before anything is deployed ---------------------------------------
rc=0; zdd ps || rc=$?
[ "$rc" -eq 1 ] && has "nothing deployed yet ($ROOT/current is missing)" &&
    ps_row web myapp.service "?" inactive/dead && [ "$(wc -l < "$T/out")" -eq 3 ]
ok $? "ps with nothing deployed: says so, web process 1 inactive, exit 1"

# --- first deploy by push --------------------------------------------------
commit one
SHA1=$(git -C "$W" rev-parse HEAD)
push main; ok $? "git push succeeds"
check "push output: one line per step" has -- "-----> build \.\.\..* ok [0-9.]* s"
check "push output: final 'deployed <id> in N s'" \
    grep -Eq "deployed [0-9]{14}-${SHA1%"${SHA1#???????}"} in [0-9.]+ s" "$T/out"
R1=$(current)
[ -n "$R1" ] && [ "$(cat "$ROOT/current/REVISION")" = "$SHA1" ]
ok $? "current -> $R1 with REVISION = pushed sha"
[ "$(served)" = "$SHA1" ]; ok $? "main instance serves the new revision"
[ "$(side_sockets)" -eq 0 ]; ok $? "side instance stopped after handover"
check "build ran (built.txt)" test -f "$ROOT/current/built.txt"
[ ! -e "$ROOT/current/.env" ] && [ ! -L "$ROOT/current/.env" ]
ok $? "no .env link into the deploy user's shared/ (the environment is root's)"
grep -q "start myapp@$R1.service" "$T/state/calls" &&
    grep -q "stop myapp@$R1.service myapp-probe@$R1.socket" "$T/state/calls" &&
    grep -q -- "--no-ask-password restart myapp.service" "$T/state/calls"
ok $? "systemctl: start side, restart main, stop side + probe socket"
awk '/start myapp@/{s=NR} /restart myapp.service/{r=NR} /stop myapp@/{t=NR}
    END{exit !(s < r && r < t)}' "$T/state/calls"
ok $? "order: side started before main restart, stopped after"
rc=0; zdd ps || rc=$?
[ "$rc" -eq 0 ] && head -n 1 "$T/out" | grep -Eq '^TYPE +UNIT +RELEASE +STATE +PID +SINCE$' &&
    ps_row web myapp.service "$R1" active/running && [ "$(wc -l < "$T/out")" -eq 2 ]
ok $? "ps: the header and web process 1 on $R1, running, exit 0"
ln -s "releases/$R1" "$ROOT/.current.relink" && mv -T "$ROOT/.current.relink" "$ROOT/current"
zdd ps
ps_row web myapp.service "?" active/running
ok $? "ps: current changed after the process started: its release is ?, not a guess"

# --- second deploy ----------------------------------------------------------
sleep 1
commit two
SHA2=$(git -C "$W" rev-parse HEAD)
push main
R2=$(current)
[ "$R2" != "$R1" ] && [ "$(previous)" = "$R1" ] && [ "$(served)" = "$SHA2" ]
ok $? "second push: current=$R2, previous=$R1, serves new revision"

# --- other branch, tag, deletion -----------------------------------------------
git -C "$W" branch feature
push feature
has "branch feature pushed, not deployed (deploy branch is main)" &&
    [ "$(current)" = "$R2" ]
ok $? "other branch accepted, not deployed"
git -C "$W" tag v1
push v1
has "tag v1 pushed, not deployed"; ok $? "tag accepted, not deployed"
push :feature
[ "$(current)" = "$R2" ]; ok $? "branch deletion deploys nothing"
printf '%s %s refs/heads/main\n' "$SHA2" \
    0000000000000000000000000000000000000000 |
    "$ZDD" --config "$CONF" hook > "$T/out" 2>&1
has "branch main deleted, nothing deployed" && [ "$(current)" = "$R2" ]
ok $? "deletion of the deploy branch deploys nothing"
printf 'garbage\n' | "$ZDD" --config "$CONF" hook > "$T/out" 2>&1 && rc=0 || rc=$?
[ "$rc" -eq 2 ]; ok $? "malformed hook input -> exit 2"

# --- failures before the swap leave everything as it was --------------------------
before=$(nreleases)
commit "break build"
printf 'all:\n\techo compiling; echo "error: broken" >&2; exit 1\n' > "$W/Makefile"
git -C "$W" commit -qam "broken makefile"
rc=0; push main || rc=$?
[ "$rc" -ne 0 ] && [ "$(git --git-dir="$T/repo.git" rev-parse main)" = "$SHA2" ]
ok $? "build failure: git push exits non-zero, the branch does not move"
has "deploy failed at build" && has "error: broken" &&
    has "$R2 still serving" && [ "$(current)" = "$R2" ] &&
    [ "$(nreleases)" -eq "$before" ] && [ "$(served)" = "$SHA2" ]
ok $? "build failure: log tail shown, release removed, $R2 still serving"
printf 'all:\n\techo built > built.txt\n' > "$W/Makefile"
git -C "$W" commit -qam "fixed makefile"

commit "exits at start" exit-at-start
rc=0; deploy_head || rc=$?
[ "$rc" -eq 1 ] && has "deploy failed at start" && has "journal of myapp@" &&
    [ "$(current)" = "$R2" ] && [ "$(nreleases)" -eq "$before" ] &&
    [ "$(side_sockets)" -eq 0 ] &&
    grep -q "reset-failed myapp@.*myapp-probe@" "$T/state/reset-failed.log"
ok $? "release exiting at start: exit 1, journal shown, failed state cleared, nothing changed"
uncommit_flag exit-at-start

commit "unhealthy" unhealthy
rc=0; deploy_head || rc=$?
[ "$rc" -eq 1 ] && has "deploy failed at health" && has "answered 503" &&
    [ "$(current)" = "$R2" ] && [ "$(nreleases)" -eq "$before" ] &&
    [ "$(side_sockets)" -eq 0 ] && [ "$(served)" = "$SHA2" ]
ok $? "unhealthy release: exit 1, side stopped, release removed"
uncommit_flag unhealthy

rc=0; zdd deploy does-not-exist || rc=$?
[ "$rc" -eq 1 ] && has "no commit 'does-not-exist'"
ok $? "unknown revision: exit 1, says so"

# --- failure after the swap rolls back ------------------------------------------
commit "main fails" main-fails
rc=0; deploy_head || rc=$?
[ "$rc" -eq 4 ] && has "rolled back, $R2 serving" && [ "$(current)" = "$R2" ] &&
    [ "$(previous)" = "$R1" ] && [ "$(served)" = "$SHA2" ] &&
    [ "$(nreleases)" -eq "$before" ] && [ "$(side_sockets)" -eq 0 ]
ok $? "main fails on new release: exit 4, links and main restored"
uncommit_flag main-fails

# --- rollback, restart ---------------------------------------------------------------
rc=0; zdd rollback || rc=$?
[ "$rc" -eq 0 ] && [ "$(current)" = "$R1" ] && [ "$(previous)" = "$R2" ] &&
    [ "$(served)" = "$SHA1" ] && has "rolled back to $R1"
ok $? "rollback: back to $R1 (previous now $R2), serves old revision"
rc=0; zdd rollback "$R2" || rc=$?
[ "$rc" -eq 0 ] && [ "$(current)" = "$R2" ] && [ "$(served)" = "$SHA2" ]
ok $? "rollback ID: forward again to $R2"
rc=0; zdd rollback "$R2" || rc=$?
[ "$rc" -eq 1 ] && has "already live"; ok $? "rollback to the live release refused"
rc=0; zdd rollback 20200101000000-abcdef0 || rc=$?
[ "$rc" -eq 1 ] && has "does not exist"; ok $? "rollback to a missing release: exit 1"
rc=0; zdd rollback ../../etc || rc=$?
[ "$rc" -eq 2 ]; ok $? "rollback to a malformed id: exit 2"
rc=0; zdd restart || rc=$?
[ "$rc" -eq 0 ] && [ "$(current)" = "$R2" ] && [ "$(served)" = "$SHA2" ] &&
    has "restarted $R2" && [ "$(side_sockets)" -eq 0 ]
ok $? "restart: handover onto the current release"

# --- releases, prune ---------------------------------------------------------------
zdd releases
grep -q "^current   $R2" "$T/out" && grep -q "^previous  $R1" "$T/out"
ok $? "releases marks current and previous"
# --- no descriptor leaks into the build (the deploy lock in particular) -------------
git -C "$W" push -q -f deploy HEAD:refs/heads/stage > /dev/null 2>&1
rc=0; zdd deploy stage --build-command 'ls /proc/self/fd > fds.txt' || rc=$?
[ "$rc" -eq 0 ] && [ "$(tr '\n' ' ' < "$ROOT/current/fds.txt")" = "0 1 2 3 " ]
ok $? "--build-command used; the build inherits only fds 0-2 (+ ls's own)"

deploys_failed=0
cur_before_more=$(current)
for i in 1 2 3; do sleep 1; commit "more $i"; deploy_head || deploys_failed=$((deploys_failed + 1)); done
last=$(current)
[ "$deploys_failed" -eq 0 ] && [ "$last" != "$cur_before_more" ] && [ "$(nreleases)" -eq 3 ] && [ -n "$last" ] &&
    [ -d "$ROOT/releases/$(previous)" ]
ok $? "KEEP_RELEASES=3 after 5 deploys (the last 3 all succeeded): 3 left, incl. current and previous"
# a rollback to an old release, then prune: neither current nor previous goes
zdd rollback; old_cur=$(current); old_prev=$(previous)
sed -i 's/^KEEP_RELEASES=3/KEEP_RELEASES=1/' "$CONF"
mkdir "$ROOT/releases/20200101000000-aaaaaaa.tmp"
zdd prune
[ -d "$ROOT/releases/$old_cur" ] && [ -d "$ROOT/releases/$old_prev" ] &&
    [ ! -e "$ROOT/releases/20200101000000-aaaaaaa.tmp" ] && [ "$(nreleases)" -eq 2 ]
ok $? "prune (keep 1): current and previous kept, stale .tmp removed"
sed -i 's/^KEEP_RELEASES=1/KEEP_RELEASES=3/' "$CONF"

# --- after the swap, and the old release will not come back either ------------------
cur=$(current)
touch "$T/state/main-broken"
sleep 1; commit "main down everywhere"
rc=0; deploy_head || rc=$?
[ "$rc" -eq 5 ] && [ "$(current)" = "$cur" ] && [ "$(side_sockets)" -eq 1 ] &&
    has "left running to keep serving"
ok $? "main fails on new and old release: exit 5, side instance left serving"
zdd status
has "<- side instance"; ok $? "status lists the side instance still running"
side=
for p in "$T"/state/side-*.pid; do [ -f "$p" ] && side=${p##*/side-} && side=${side%.pid}; done
rc=0; zdd ps || rc=$?
[ "$rc" -eq 1 ] && [ -n "$side" ] && ps_row web "myapp@$side.service" "$side" active/running &&
    ps_row web myapp.service "?" inactive/dead
ok $? "ps: the side instance left serving, on its own release; web process 1 down: exit 1"
rm "$T/state/main-broken"
rc=0; zdd restart || rc=$?
[ "$rc" -eq 0 ] && [ "$(side_sockets)" -eq 0 ] && has "stopping stray" &&
    [ "$(served)" = "$(cat "$ROOT/current/REVISION")" ]
ok $? "next handover (restart) stops the stray side instance"

# --- after the swap, with nothing live before: back to nothing ------------------------
cur=$(current); prev=$(previous); nrel=$(nreleases)
rm "$ROOT/current" "$ROOT/previous"
touch "$T/state/main-broken"
sleep 1; commit "first release, main down"
rc=0; deploy_head || rc=$?
[ "$rc" -eq 4 ] && [ ! -e "$ROOT/current" ] && [ ! -e "$ROOT/previous" ] &&
    [ "$(side_sockets)" -eq 0 ] && [ "$(nreleases)" -eq "$nrel" ] &&
    has "removed release" && has "links restored, nothing was live before"
ok $? "main fails on the first release: exit 4, no links, release removed, side stopped"
rm "$T/state/main-broken"
ln -s "releases/$cur" "$ROOT/current"; ln -s "releases/$prev" "$ROOT/previous"
rc=0; zdd restart || rc=$?
[ "$rc" -eq 0 ] && [ "$(served)" = "$(cat "$ROOT/current/REVISION")" ]
ok $? "links put back by hand: restart serves the release again"

# --- lock ----------------------------------------------------------------------------
flock "$ROOT/.deploy.lock" sleep 4 &
holder=$!
sleep 0.3
rc=0; deploy_head || rc=$?
[ "$rc" -eq 3 ] && has "waiting for deploy lock" && has "deploy failed at lock"
ok $? "lock held elsewhere: waits LOCK_TIMEOUT, exit 3"
wait "$holder"

# --- concurrent pushes end consistent -------------------------------------------------
sed -i 's/^LOCK_TIMEOUT=1/LOCK_TIMEOUT=60/' "$CONF"
sleep 1; commit "concurrent a"; A=$(git -C "$W" rev-parse HEAD)
git -C "$W" push -q -f deploy HEAD:refs/heads/stage > /dev/null 2>&1
zdd_bg() { "$ZDD" --config "$CONF" deploy "$1" > "$T/out.$1" 2>&1; }
zdd_bg "$A" & p1=$!
zdd_bg "$A" & p2=$!
r1=0; wait "$p1" || r1=$?
r2=0; wait "$p2" || r2=$?
[ "$r1" -eq 0 ] && [ "$r2" -eq 0 ] && [ "$(served)" = "$A" ] &&
    [ "$(current)" != "$(previous)" ] && [ "$(side_sockets)" -eq 0 ] &&
    grep -q deployed "$T/out.$A"
ok $? "two concurrent deploys: both succeed one after the other, consistent"

# --- concurrent pushes from two clones of the same tip: one wins ----------------------
git -C "$W" push -q deploy HEAD:main > /dev/null 2>&1
W2=$T/work2
git clone -q "$T/repo.git" "$W2"
git -C "$W2" checkout -q main
sleep 1; commit "race a"
git -C "$W2" -c user.name=t -c user.email=t@example.org commit -q --allow-empty -m "race b"
git -C "$W" push deploy HEAD:main > "$T/out.a" 2>&1 & p1=$!
git -C "$W2" push origin HEAD:main > "$T/out.b" 2>&1 & p2=$!
r1=0; wait "$p1" || r1=$?
r2=0; wait "$p2" || r2=$?
tip=$(git --git-dir="$T/repo.git" rev-parse main)
[ $((r1 == 0)) -ne $((r2 == 0)) ] && [ "$(served)" = "$tip" ] &&
    [ "$(cat "$ROOT/current/REVISION")" = "$tip" ] &&
    grep -qE "moved to|fetch first|non-fast-forward" "$T/out.a" "$T/out.b"
# (refused by the engine if they overlapped, by git itself if one ended first)
ok $? "two pushes from the same base at once: one deploys, the other is refused, branch = live"

# --- status, history -----------------------------------------------------------------
rc=0; zdd status || rc=$?
[ "$rc" -eq 0 ] && has "live:     $(current)" && has "health:   200"
ok $? "status: live release and health"
H=$ROOT/deploys.jsonl
python3 - "$H" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
results = {l["result"] for l in lines}
actions = {l["action"] for l in lines}
need = {"id", "revision", "branch", "user", "started", "finished",
        "result", "seconds"}
assert all(need <= set(l) for l in lines), "missing keys"
assert {"ok", "failed", "rolled-back"} <= results, results
assert {"deploy", "rollback", "restart"} <= actions, actions
ok = [l for l in lines if l["result"] == "ok" and l["action"] == "deploy"]
assert all("build" in l["seconds"] and "swap" in l["seconds"] for l in ok)
fail = [l for l in lines if l["result"] == "failed" and l["failed_step"]]
assert {"build", "start", "health"} <= {l["failed_step"] for l in fail}
EOF
ok $? "history: one JSON line per run with all fields and outcomes"

# --- interrupted during the build -------------------------------------------------------
cur=$(current); before=$(nreleases)
"$ZDD" --config "$CONF" deploy stage \
    --build-command "sleep 60 & echo \$! > $T/bg.pid; sleep 60" \
    > "$T/out" 2>&1 &
zpid=$!
i=0; while [ ! -s "$T/bg.pid" ] && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
"$ZDD" --config "$CONF" ps > "$T/out.ps" 2>&1; rc=$?
awk '$1 == "build" && $2 ~ /^myapp-build@[0-9]+-[0-9a-f]+\.service$/ &&
    $2 == "myapp-build@" $3 ".service" && $4 == "activating/start" && $5 ~ /^[0-9]+$/ { f = 1 }
    END { exit !(f) }' "$T/out.ps" && [ "$rc" -eq 0 ]
ok $? "ps during a build: the build unit, its release, running (exit 0)"
kill -INT "$zpid"
rc=0; wait "$zpid" || rc=$?
sleep 0.2
bg=$(cat "$T/bg.pid")
[ "$rc" -eq 1 ] && has "deploy failed at build: interrupted" &&
    [ "$(current)" = "$cur" ] && [ "$(nreleases)" -eq "$before" ] &&
    { ! kill -0 "$bg" 2>/dev/null || grep -q '^State:.*Z' "/proc/$bg/status"; }
ok $? "SIGINT during the build: build group killed, release removed, exit 1"

# --- the release command (the Procfile's release:) --------------------------------
sleep 1
# shellcheck disable=SC2016 # the release command's shell expands it
printf 'release: echo "release command of $ZDD_RELEASE" >> ../../release-runs.txt\n' > "$W/Procfile"
git -C "$W" add Procfile
commit "a release command"
rc=0; deploy_head || rc=$?
RM=$(current)
[ "$rc" -eq 0 ] && [ "$(wc -l < "$ROOT/release-runs.txt")" -eq 1 ] &&
    grep -qx "release command of $RM" "$ROOT/release-runs.txt" && has "release command: echo"
ok $? "release command: run once per deploy, in its release, which then goes live"
awk -v r="$RM" '$0 ~ "start myapp-release@" r {a=NR} $0 ~ "start myapp@" r {b=NR} END {exit !(a && b && a < b)}' \
    "$T/state/calls"
ok $? "release command: its unit runs before the release's instance starts"
# shellcheck disable=SC2016 # the command as written, $ZDD_RELEASE and all
tail -n 1 "$ROOT/deploys.jsonl" | grep -qF '"release_command":"echo \"release command of $ZDD_RELEASE\"' &&
    tail -n 1 "$ROOT/deploys.jsonl" | grep -q '"release_command_result":"ok"'
ok $? "release command: the history records which command the release ran, and that it passed"
printf 'release: echo migration broke; exit 3\n' > "$W/Procfile"
git -C "$W" add Procfile
sleep 1; commit "a failing release command"
nrel=$(nreleases)
rc=0; deploy_head || rc=$?
failed_id=$(tail -n 1 "$ROOT/deploys.jsonl" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
[ "$rc" -eq 1 ] && [ "$(current)" = "$RM" ] && [ "$(nreleases)" -eq "$nrel" ] &&
    has "deploy failed at release: 'echo migration broke; exit 3' failed (exit status 3)" &&
    ! grep -q "start myapp@$failed_id" "$T/state/calls" &&
    tail -n 1 "$ROOT/deploys.jsonl" | grep -q '"release_command_result":"failed"'
ok $? "failing release command: refused (exit 1), release removed, never started, nothing live changed"
rc=0; zdd rollback || rc=$?
[ "$rc" -eq 1 ] && [ "$(current)" = "$RM" ] && has "whose release command ran last" &&
    has "myapp-zdd rollback --force"
ok $? "rollback behind the last release command: refused (exit 1) without --force, saying so"
before_force=$(previous)
rc=0; zdd rollback --force || rc=$?
[ "$rc" -eq 0 ] && [ "$(current)" = "$before_force" ] && has "rolling back across it (--force)"
ok $? "rollback --force: goes behind it, with a warning"
rc=0; zdd rollback "$RM" || rc=$?
[ "$rc" -eq 0 ] && [ "$(current)" = "$RM" ]
ok $? "rollback forward to the release that ran it: no --force needed"
git -C "$W" rm -q Procfile
commit "no release command"

# --- web quantity (app.json formation.web.quantity) ------------------------------
web_served() { # K: the revision web process K serves through its probe socket
	curl -s --max-time 2 --unix-socket "$RUN/myapp-probe-web-$1.sock" http://localhost/healthz
}
printf '{"formation": {"web": {"quantity": 3}}}\n' > "$W/app.json"
git -C "$W" add app.json
sleep 1; commit "three web processes"
rc=0; deploy_head || rc=$?
WQ=$(git -C "$W" rev-parse HEAD)
[ "$rc" -eq 0 ] && has "web processes: 3 (app.json formation)" && [ "$(web_served 2)" = "$WQ" ] &&
    [ "$(web_served 3)" = "$WQ" ] && [ "$(served)" = "$WQ" ]
ok $? "web quantity 3: main and web processes 2 and 3 serve the new release"
awk '/restart myapp.service/ {m=NR} /restart myapp-web@2.service/ {a=NR} /restart myapp-web@3.service/ {b=NR}
     /^--no-ask-password stop myapp@/ {s=NR} END {exit !(m && a && b && s && m < a && a < b && b < s)}' "$T/state/calls"
ok $? "web quantity: one at a time after main, all before the handover instance stops"
rc=0; zdd status || rc=$?
[ "$rc" -eq 0 ] && has "myapp-web@2.service" && has "myapp-web@3.service" && has "web processes: 3"
ok $? "status: every web process"
# what the fake does not run: a scheduled job running, and units ps leaves
# out (a release command that ended failed, another app's unit)
printf '%s\n' "myapp-cron@0.service loaded activating start cron" \
    "myapp-release@20200101000000-abcdef0.service loaded failed failed release" \
    "myapp-frob@1.service loaded active running other" > "$T/state/units.extra"
printf 'ActiveState=activating\nSubState=start\nMainPID=4242\nInactiveExitTimestamp=Mon 2026-01-05 03:00:00.000001 UTC\n' \
    > "$T/state/myapp-cron@0.service.show"
calls0=$(wc -l < "$T/state/calls")
rc=0; zdd ps || rc=$?
cur=$(current)
tail -n +"$((calls0 + 1))" "$T/state/calls" > "$T/ps.calls"
[ "$rc" -eq 0 ] && ps_row web myapp.service "$cur" active/running &&
    ps_row web myapp-web@2.service "$cur" active/running && ps_row web myapp-web@3.service "$cur" active/running &&
    [ "$(ps_rows web)" -eq 3 ] &&
    grep -Eq '^cron +myapp-cron@0.service +\? +activating/start +4242 +2026-01-05 03:00:00 UTC$' "$T/out" &&
    ! has "myapp-release@" && ! has "myapp-frob@" && [ "$(wc -l < "$T/out")" -eq 5 ]
ok $? "ps: web processes 1..3 on the live release, a running scheduled job (release ?), nothing else"
[ "$(wc -l < "$T/ps.calls")" -eq 2 ] && grep -q '^list-units --all .* myapp.service myapp-web@\*.service ' "$T/ps.calls" &&
    grep -Eq '^show --no-pager --timestamp=us\+utc -p Id,[^ ]+ myapp.service myapp-web@2.service myapp-web@3.service myapp-cron@0.service$' "$T/ps.calls"
ok $? "ps: one systemctl list-units, one systemctl show for all the units"
rm -f "$T/state/units.extra" "$T/state/myapp-cron@0.service.show"
WQ_ID=$(current)
printf 'x\n' > "$W/web2-fails"
git -C "$W" add web2-fails
sleep 1; commit "web process 2 fails on this release"
rc=0; deploy_head || rc=$?
[ "$rc" -eq 4 ] && [ "$(current)" = "$WQ_ID" ] && [ "$(web_served 2)" = "$WQ" ] && [ "$(served)" = "$WQ" ] &&
    has "myapp-web@2.service did not restart"
ok $? "web process 2 fails on the new release: rolled back (exit 4), main and web process 2 on the old one"
git -C "$W" rm -q web2-fails
printf '{"formation": {"web": {"quantity": 17}}}\n' > "$W/app.json"
git -C "$W" add app.json
sleep 1; commit "too many web processes"
rc=0; deploy_head || rc=$?
[ "$rc" -eq 1 ] && [ "$(current)" = "$WQ_ID" ] && has "formation.web.quantity must be a number from 1 to 16"
ok $? "web quantity 17: refused at spec (exit 1), nothing changed"
git -C "$W" rm -q app.json
sleep 1; commit "one web process again"
rc=0; deploy_head || rc=$?
[ "$rc" -eq 0 ] && has "stopping myapp-web@2.service (web quantity 1)" && has "stopping myapp-web@3.service" &&
    ! ls "$T/state"/web-*.pid > /dev/null 2>&1
ok $? "web quantity back to 1: web processes 2 and 3 stopped"

# --- workers: the Procfile's other types, one generation at a time ---------------
# Each generation writes when it begins (pid, time, release) and, on SIGTERM,
# when it ends.
# shellcheck disable=SC2016 # the worker's shell expands these
printf '%s\n' '#!/bin/sh' \
    'trap '"'"'echo "end $$ $(date +%s%N)" >> ../../worker-gens.txt; exit 0'"'"' TERM' \
    'echo "begin $$ $(date +%s%N) $ZDD_PROCESS_TYPE $(basename "$(pwd -P)")" >> ../../worker-gens.txt' \
    'while :; do sleep 0.1; done' > "$W/worker.sh"
printf 'worker: sh worker.sh\n' > "$W/Procfile"
git -C "$W" add Procfile worker.sh
sleep 1; commit "a worker"
rc=0; deploy_head || rc=$?
WK1=$(current)
[ "$rc" -eq 0 ] && has "worker worker: restart myapp-worker@worker.service" &&
    [ "$(grep -c '^begin' "$ROOT/worker-gens.txt")" -eq 1 ] &&
    grep -q "^begin [0-9]* [0-9]* worker $WK1\$" "$ROOT/worker-gens.txt" &&
    tail -n 1 "$ROOT/deploys.jsonl" | grep -q '"workers":{"worker":"running"}'
ok $? "worker: started on the new release after the deploy, recorded in the history"
awk '$0 ~ /^--no-ask-password restart myapp.service/ {a=NR} $0 ~ /restart myapp-worker@worker.service/ {b=NR} END {exit !(a && b && a < b)}' \
    "$T/state/calls"
ok $? "worker: restarted only once the new web release is live"
sleep 1; commit "a second generation"
rc=0; deploy_head || rc=$?
WK2=$(current)
# the first generation's end comes before the second's beginning
awk -v r="$WK2" '$1 == "end" {e = $3} $1 == "begin" && $5 == r {b = $3} END {exit !(e && b && e < b)}' \
    "$ROOT/worker-gens.txt" && [ "$rc" -eq 0 ] && [ "$(grep -c '^begin' "$ROOT/worker-gens.txt")" -eq 2 ] &&
    [ "$(grep -c '^end' "$ROOT/worker-gens.txt")" -eq 1 ]
ok $? "worker: the old generation ended before the new one began (never two at once)"
rc=0; zdd status || rc=$?
has "myapp-worker@worker.service" && has "started on release $WK2" && has "process:  worker: sh worker.sh"
ok $? "status: the worker, its state and the release that started it"
rc=0; zdd ps || rc=$?
[ "$rc" -eq 0 ] && ps_row worker myapp-worker@worker.service "$WK2" active/running &&
    ps_row web myapp.service "$WK2" active/running
ok $? "ps: the worker (type worker) on the release it runs, running"
printf 'worker: echo worker cannot start; exit 3\n' > "$W/Procfile"
git -C "$W" add Procfile
sleep 1; commit "a broken worker"
rc=0; deploy_head || rc=$?
WK3=$(current)
[ "$rc" -eq 0 ] && [ "$WK3" != "$WK2" ] && has "worker worker did not stay up" && has "a worker did not start" &&
    has "myapp-zdd rollback' restores" && tail -n 1 "$ROOT/deploys.jsonl" | grep -q '"workers":{"worker":"failed"}'
ok $? "broken worker: said in the push and the history; the web release stays live"
rc=0; zdd status || rc=$?
[ "$rc" -ne 0 ]
ok $? "status: a declared worker that does not run fails the status"
rc=0; zdd ps || rc=$?
[ "$rc" -eq 1 ] && ps_row worker myapp-worker@worker.service "$WK3" failed &&
    grep -Eq '^worker +myapp-worker@worker.service +[^ ]+ +failed +- ' "$T/out" &&
    ps_row web myapp.service "$WK3" active/running
ok $? "ps: a failed worker is listed failed, without a PID: exit 1"
rc=0; zdd rollback || rc=$?
[ "$rc" -eq 0 ] && [ "$(current)" = "$WK2" ] && [ "$(tail -n 1 "$ROOT/worker-gens.txt" | cut -d' ' -f1,5)" = "begin $WK2" ]
ok $? "rollback: the old generation of the worker back"
git -C "$W" rm -q Procfile worker.sh
sleep 1; commit "no workers"
rc=0; deploy_head || rc=$?
[ "$rc" -eq 0 ] && has "worker worker: no longer declared, stopping" &&
    ! ls "$T/state"/worker-*.pid > /dev/null 2>&1 &&
    tail -n 1 "$ROOT/deploys.jsonl" | grep -q '"workers":{"worker":"stopped"}'
ok $? "worker no longer declared: stopped by the deploy"

# --- scheduled jobs: app.json cron, through myapp-cron-sync.service -----------------
printf '%s\n' '{"cron": [{"command": "echo tick", "schedule": "*/20 * * * *"},' \
    '  {"command": "echo later", "schedule": "@daily", "maintenance": true},' \
    '  {"command": "worker", "schedule": "0 3 * * mon"}]}' > "$W/app.json"
git -C "$W" add app.json
sleep 1; commit "scheduled jobs"
rc=0; deploy_head || rc=$?
[ "$rc" -eq 0 ] && has "cron 0: \*/20 \* \* \* \*: next next of \*-\*-\* \*:00,20,40:00" &&
    has "cron 1: @daily: in maintenance, not run" && has "cron 2: 0 3 \* \* mon: next" &&
    grep -q "start myapp-cron-sync.service" "$T/state/calls"
ok $? "cron: the deploy sets the timers and says when each runs next"
printf '0 *-*-* *:00,20,40:00\n2 Mon *-*-* 03:00:00\n' > "$T/expect"
cmp -s "$T/expect" "$T/state/cron.list"
ok $? "cron-list: the entries to run as 'N OnCalendar', none in maintenance"
rc=0; zdd status || rc=$?
has "cron 0:   \*/20 \* \* \* \* (timer active): last never, next" && has "cron 1:   @daily: in maintenance"
ok $? "status: each scheduled job with its timer, last and next run"
printf 'ActiveState=inactive\n' > "$T/state/myapp-cron@2.timer.show"
rc=0; zdd status || rc=$?
[ "$rc" -eq 1 ]
ok $? "status: a declared job whose timer does not run fails the status"
CRON_LIVE=$(current)
printf '{"cron": [{"command": "x", "schedule": "0 0 1 * fri"}]}\n' > "$W/app.json"
git -C "$W" add app.json
sleep 1; commit "a schedule a timer cannot keep"
rc=0; deploy_head || rc=$?
[ "$rc" -eq 1 ] && [ "$(current)" = "$CRON_LIVE" ] && has "cron\[0\].schedule" && has "use two entries"
ok $? "cron: a schedule cron and a timer read differently refuses the push, nothing changed"
git -C "$W" rm -q app.json
sleep 1; commit "no scheduled jobs"
rc=0; deploy_head || rc=$?
[ "$rc" -eq 0 ] && ! ls "$T/state"/myapp-cron@*.timer.show > /dev/null 2>&1 && [ ! -s "$T/state/cron.list" ]
ok $? "cron: no entries left, the deploy stops their timers"
: > "$T/state/calls"
sleep 1; commit "still none"
rc=0; deploy_head || rc=$?
[ "$rc" -eq 0 ] && ! grep -q "cron-sync" "$T/state/calls"
ok $? "cron: an app without scheduled jobs costs the deploy no cron step"
rc=0; printf 'myapp-cron@3.service 7\n' | "$ZDD" --config "$CONF" logs-serve > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] && has "journal of myapp-cron@3.service"
ok $? "logs-serve: a scheduled job's journal is served"

# --- config: the engine owns every setting's default and check ------------------
TEMPLATES=$HERE/../../../debian/templates
template_default() { # QUESTION: its Default: in debian/templates
	awk -v q="myapp-zdd/$1" '$1 == "Template:" { t = $2 } t == q && $1 == "Default:" { sub(/^Default: */, ""); print; exit }' "$TEMPLATES"
}
engine_default() { "$ZDD" config defaults | sed -n "s/^$1=//p"; }
mismatch=
for pair in server_name:SERVER_NAME listen:LISTEN branch:BRANCH keep_releases:KEEP_RELEASES nginx_site:NGINX_SITE \
    https:HTTPS tls_certificate:TLS_CERTIFICATE tls_key:TLS_KEY letsencrypt_email:LETSENCRYPT_EMAIL; do
	[ "$(template_default "${pair%%:*}")" = "$(engine_default "${pair#*:}")" ] || mismatch="$mismatch $pair"
done
[ -f "$TEMPLATES" ] && [ -z "$mismatch" ]
ok $? "debconf's defaults are the engine's (config defaults)${mismatch:+: differ:$mismatch}"
site_keys=$("$ZDD" config keys site | tr '\n' ' ')
engine_keys=$("$ZDD" config keys engine | tr '\n' ' ')
[ "$site_keys" = "LISTEN SERVER_NAME NGINX_SITE NGINX_ANY_HOST HTTPS TLS_CERTIFICATE TLS_KEY LETSENCRYPT_EMAIL ACME_SERVER " ] &&
    case " $engine_keys" in *" BRANCH "*) true ;; *) false ;; esac &&
    [ $(($(printf '%s' "$site_keys" | wc -w) + $(printf '%s' "$engine_keys" | wc -w))) -eq "$("$ZDD" config defaults | wc -l)" ] &&
    [ "$("$ZDD" config defaults site | cut -d= -f1 | tr '\n' ' ')" = "$site_keys" ] &&
    ! "$ZDD" config defaults engine | grep -q '^HTTPS='
ok $? "config keys|defaults site|engine: server.conf's keys and the engine file's split every setting"
rc=0; "$ZDD" config keys others > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && has "usage:"
ok $? "config keys of another kind: usage (exit 2)"
rc=0; "$ZDD" config check 'LISTEN=/run/x;return 200 pwned;#.sock' > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && has "LISTEN: '/run/x;return 200 pwned;#.sock' is not valid"
ok $? "config check: a hostile LISTEN is refused (exit 2), saying why"
rc=0; "$ZDD" config check 'TLS_KEY=/etc/ssl/x;return 200' > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && has "TLS_KEY: '/etc/ssl/x;return 200' is not valid"
ok $? "config check: a TLS_KEY nginx would read as more than a path is refused"
rc=0; "$ZDD" config check TLS_CERTIFICATE=/etc/ssl/../shadow > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && has "TLS_CERTIFICATE: '/etc/ssl/../shadow' is not valid"
ok $? "config check: a TLS_CERTIFICATE with '..' is refused"
rc=0; "$ZDD" config check HTTPS=yes > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && has "HTTPS: 'yes' is not valid (expected none, certificate or letsencrypt)"
ok $? "config check: HTTPS is none, certificate or letsencrypt"
rc=0; "$ZDD" config check 'LETSENCRYPT_EMAIL=a@b --server=http://evil' > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && has "LETSENCRYPT_EMAIL: 'a@b --server=http://evil' is not valid"
ok $? "config check: a LETSENCRYPT_EMAIL that would be more than an address for certbot is refused"
rc=0; "$ZDD" config check ACME_SERVER=http://acme.example/dir > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && has "ACME_SERVER: 'http://acme.example/dir' is not valid"
ok $? "config check: ACME_SERVER must be https"
[ "$(engine_default ACME_SERVER)" = https://acme-v02.api.letsencrypt.org/directory ]
ok $? "ACME_SERVER is Let's Encrypt's by default"
rc=0; "$ZDD" config check HTTPS=certificate TLS_CERTIFICATE=/etc/ssl/certs/a.pem \
    TLS_KEY=/etc/ssl/private/a.key TLS_KEY= HTTPS=letsencrypt LETSENCRYPT_EMAIL=ops+tls@example.org \
    LETSENCRYPT_EMAIL= ACME_SERVER=https://localhost:14000/dir > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 0 ]
ok $? "config check: HTTPS with plain paths (or none) passes"
rc=0; "$ZDD" config check 'SERVER_NAME=a.example.org b.example.org' LISTEN=8080 KEEP_RELEASES=2 \
    APP_ROOT=/srv/app > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 0 ]
ok $? "config check: good values pass"
mkdir -p "$T/cfgdir"
printf 'KEEP_RELEASES=7\n' > "$T/cfgdir/myapp-zdd.conf"
printf 'SERVER_NAME=example.org\n' > "$T/cfgdir/server.conf"
[ "$("$ZDD" --config "$T/cfgdir/myapp-zdd.conf" config get KEEP_RELEASES)" = 7 ] &&
    [ "$("$ZDD" --config "$T/cfgdir/myapp-zdd.conf" config get SERVER_NAME)" = example.org ] &&
    [ "$("$ZDD" --config "$T/cfgdir/myapp-zdd.conf" config get BRANCH)" = main ]
ok $? "config get: the engine's file, server.conf beside it, defaults for the rest"
printf 'LISTEN=/tmp/evil.sock\n' > "$T/cfgdir/server.conf"
rc=0; "$ZDD" --config "$T/cfgdir/myapp-zdd.conf" config list > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && has "server.conf:1: LISTEN: '/tmp/evil.sock' is not valid"
ok $? "config list: a bad value in server.conf is refused (exit 2), with file and line"

# --- logs-serve: one request on the logs socket's connection ---------------------
rc=0; printf 'myapp.service 7\n' | "$ZDD" --config "$CONF" logs-serve > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] && has "journal of myapp.service: app said goodbye"
ok $? "logs-serve: an app unit's journal is served (journalctl run for it)"
rc=0; printf 'myapp-worker@queue_2.service 7\n' | "$ZDD" --config "$CONF" logs-serve > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] && has "journal of myapp-worker@queue_2.service"
ok $? "logs-serve: a worker's journal is served"
rc=0; printf 'myapp-worker@a.b.service 7\n' | "$ZDD" --config "$CONF" logs-serve > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && ! has "journal of"
ok $? "logs-serve: a worker unit that is no Procfile type is refused"
rc=0; printf 'ssh.service 7\n' | "$ZDD" --config "$CONF" logs-serve > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && has "refused" && ! has "journal of"
ok $? "logs-serve: another unit is refused (exit 2), journalctl not run"
rc=0; printf 'myapp.service 7' | "$ZDD" --config "$CONF" logs-serve > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && ! has "journal of"
ok $? "logs-serve: a request without its newline is refused"
rc=0; printf 'app 5\n' | "$ZDD" --config "$CONF" logs-serve > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] && has "journal of myapp.service myapp@\*.service myapp-twin@\*.service myapp-release@\*.service myapp-build@\*.service myapp-worker@\*.service myapp-web@\*.service myapp-cron@\*.service myapp-run@\*.service myapp.slice: app said goodbye (-n 5)"
ok $? "logs-serve: 'app' is every unit of the app in one journal, and no other"
rc=0; printf 'myapp.service 5 follow\n' | "$ZDD" --config "$CONF" logs-serve > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] && has "journal of myapp.service: app said goodbye (-n 5 follow)" && has "a later line"
ok $? "logs-serve: 'follow' runs journalctl --follow"
rc=0; printf 'myapp.service 5 -f\n' | "$ZDD" --config "$CONF" logs-serve > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && ! has "journal of"
ok $? "logs-serve: any other word after the count is refused"
rc=0; zdd logs -n 0 || rc=$?
[ "$rc" -eq 2 ] && has "not a number of lines from 1 to 1000"
ok $? "logs -n 0: refused (exit 2)"
rc=0; zdd logs ssh.service || rc=$?
[ "$rc" -eq 2 ] && has "ssh.service is not a unit of myapp"
ok $? "logs of another unit: refused before asking (exit 2)"
rc=0; zdd logs -n 5 || rc=$?
[ "$rc" -eq 1 ] && has "cannot read the journal through myapp-logs.socket"
ok $? "logs without the logs socket: says so, exit 1"

# The client through a socket that runs logs-serve per connection, as
# systemd's Accept=yes does (the env and run tests below use it too).
cat > "$T/accept-socket.py" <<'EOF'
import socket, subprocess, sys
path, log = sys.argv[1:3]
kind = socket.SOCK_SEQPACKET if path.endswith("-run.sock") else socket.SOCK_STREAM
s = socket.socket(socket.AF_UNIX, kind)
s.bind(path)
s.listen(4)
while True:
    c, _ = s.accept()
    with open(log, "a") as err:
        subprocess.run(sys.argv[3:], stdin=c, stdout=c, stderr=err)
    c.close()
EOF
accept_socket() { # SOCKET LOG COMMAND...: serve SOCKET until killed, its pid in SOCKET.pid
	python3 "$T/accept-socket.py" "$@" &
	echo $! > "$1.pid"
	i=0; while [ ! -S "$1" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
}
accept_socket_stop() { # SOCKET
	kill "$(cat "$1.pid")" 2>/dev/null || true
	rm -f "$1.pid" "$1"
}
accept_socket "$RUN/myapp-logs.sock" "$T/logs-serve.log" "$ZDD" --config "$CONF" logs-serve
rc=0; zdd logs -n 7 myapp.service || rc=$?
[ "$rc" -eq 0 ] && has "journal of myapp.service: app said goodbye (-n 7)" && ! has "a later line"
ok $? "logs through the socket: the unit's last lines, exit 0"
start=$(date +%s)
rc=0; timeout 20 "$ZDD" --config "$CONF" logs -f -n 3 > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] && has "app said goodbye (-n 3 follow)" && has "a later line" && [ $(($(date +%s) - start)) -ge 5 ]
ok $? "logs -f: follows until the server ends it (what came later shown), exit 0"
start=$(date +%s)
rc=0; { timeout 20 "$ZDD" --config "$CONF" logs -f | head -n 1; } > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] && has "app said goodbye" && ! has "a later line" && [ $(($(date +%s) - start)) -lt 4 ]
ok $? "logs -f: ends as soon as its reader goes, not at the next line (6 s later)"
i=0; while pgrep -f "$T/fake-journalctl" > /dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
[ -z "$(pgrep -f "$T/fake-journalctl")" ]
ok $? "logs -f: the reader gone, logs-serve stops journalctl at once (not at its next line)"
accept_socket_stop "$RUN/myapp-logs.sock"

# --- env: the app's environment through the env socket (env-serve) -----------
# env-serve alone: a request on stdin, the answer on stdout, the file beside
# the configuration ($T/env).
# shellcheck disable=SC2059 # the request is the format: \n and \001 in it
serve() { printf "$@" | "$ZDD" --config "$CONF" env-serve > "$T/out" 2> "$T/err"; }
printf '# kept\nOLD=1\n' > "$T/env"
rc=0
# shellcheck disable=SC2016 # $HOME is a value here, never expanded
serve 'set\nA=x y\nB=$HOME "q"\n' || rc=$?
# shellcheck disable=SC2016 # $HOME is a value here, never expanded
[ "$rc" -eq 0 ] && grep -q '^changed [0-9]' "$T/out" && [ "$(stat -c %a "$T/env")" = 600 ] &&
	[ "$(cat "$T/env")" = "$(printf '# kept\nOLD=1\nA="x y"\nB="\\$HOME \\"q\\""')" ]
ok $? "env-serve set: the file written whole, quoted for systemd, 0600, others kept"
[ "$(cat "$T/.env.previous")" = "$(printf '# kept\nOLD=1')" ]
ok $? "env-serve set: the file before it kept as .env.previous"
! grep -q 'x y\|HOME' "$T/err" && grep -q 'env-serve: set A B' "$T/err"
ok $? "env-serve: the journal gets the names, never the values"
rc=0; serve 'list\n' || rc=$?
# shellcheck disable=SC2016 # $HOME is a value here, never expanded
[ "$rc" -eq 0 ] && [ "$(cat "$T/out")" = "$(printf 'OLD=1\nA=x y\nB=$HOME "q"\nok')" ]
ok $? "env-serve list: the values as systemd reads them, then ok"
rc=0; serve 'set\nA=x y\n' || rc=$?
[ "$rc" -eq 0 ] && [ "$(cat "$T/out")" = unchanged ]
ok $? "env-serve set of the same value: unchanged"
sum=$(md5sum < "$T/env")
for bad in 'set\nLISTEN_FDS=1\n' 'set\nnovalue\n' 'set\nA=1\nA=2\n' 'unset\nA=1\n' 'set\n' 'drop\nA\n' 'set\nX=a\001b\n'; do
	rc=0; serve "$bad" || rc=$?
	[ "$rc" -eq 2 ] && grep -q '^error: ' "$T/out" && [ "$(md5sum < "$T/env")" = "$sum" ]
	ok $? "env-serve refuses '$(printf '%s' "$bad" | sed 's/[\\]n/ /g')' (exit 2, error:, file unchanged)"
done
rc=0; serve 'unset\nA\nNOPE\n' || rc=$?
token=$(sed -n 's/^changed //p' "$T/out")
[ "$rc" -eq 0 ] && [ -n "$token" ] && ! grep -q '^A=' "$T/env"
ok $? "env-serve unset: the name is gone"
rc=0; serve 'revert\nnot-the-token\n' || rc=$?
[ "$rc" -eq 1 ] && grep -q 'changed since' "$T/out" && ! grep -q '^A=' "$T/env"
ok $? "env-serve revert with another token: refused, file kept"
rc=0; serve "revert\n$token\n" || rc=$?
[ "$rc" -eq 0 ] && [ "$(cat "$T/out")" = reverted ] && grep -q '^A="x y"' "$T/env"
ok $? "env-serve revert with its token: the file before the unset is back"
printf 'X="open\n' > "$T/env"
rc=0; serve 'set\nA=1\n' || rc=$?
[ "$rc" -eq 1 ] && grep -q 'line 1 .*edit it as root' "$T/out"
ok $? "env-serve: a file it cannot read line by line is not edited"
rm -f "$T/env" "$T/.env.previous"
rc=0; serve 'set\nFIRST=1\n' || rc=$?
[ "$rc" -eq 0 ] && [ "$(cat "$T/env")" = FIRST=1 ] && [ -f "$T/.env.previous" ] && [ ! -s "$T/.env.previous" ]
ok $? "env-serve set with no file yet: creates it (and an empty previous)"

# The client (myapp-zdd env), through a socket that runs env-serve per
# connection as systemd's Accept=yes does; set and unset restart the app.
accept_socket "$RUN/myapp-env.sock" "$T/env-serve.log" "$ZDD" --config "$CONF" env-serve
live=$(current)
rc=0; zdd env set "GREETING=hi there" || rc=$?
[ "$rc" -eq 0 ] && has "restarting the app onto it" && has "restarted $live" && grep -q '^GREETING="hi there"' "$T/env"
ok $? "env set: the file changed, then a restart onto the live release"
rc=0; zdd env get GREETING || rc=$?
[ "$rc" -eq 0 ] && [ "$(cat "$T/out")" = "hi there" ]
ok $? "env get: the value alone"
rc=0; zdd env get NOPE || rc=$?
[ "$rc" -eq 1 ] && [ ! -s "$T/out" ]
ok $? "env get of a name not set: exit 1, nothing printed"
rc=0; zdd env list || rc=$?
[ "$rc" -eq 0 ] && has "^FIRST=1$" && has "^GREETING=hi there$"
ok $? "env list"
calls=$(wc -l < "$T/state/calls")
rc=0; zdd env set --no-restart LATER=1 || rc=$?
[ "$rc" -eq 0 ] && has "applies at the next deploy" && [ "$(wc -l < "$T/state/calls")" -eq "$calls" ]
ok $? "env set --no-restart: changed, no systemctl call"
rc=0; zdd env set LISTEN_PID=1 || rc=$?
[ "$rc" -eq 2 ] && has "LISTEN_PID is set by systemd"
ok $? "env set of a variable systemd sets: refused before asking (exit 2)"
# A restart that fails (the deploy lock held) puts the file back.
sed -i 's/^LOCK_TIMEOUT=60/LOCK_TIMEOUT=1/' "$CONF"
flock "$ROOT/.deploy.lock" sleep 4 &
holder=$!
sleep 0.3
sum=$(md5sum < "$T/env")
rc=0; zdd env set GREETING=changed || rc=$?
[ "$rc" -eq 1 ] && has "the environment is back as it was" && [ "$(md5sum < "$T/env")" = "$sum" ]
ok $? "env set whose restart fails: exit 1, the file as it was"
wait "$holder"
sed -i 's/^LOCK_TIMEOUT=1/LOCK_TIMEOUT=60/' "$CONF"
rc=0; zdd env unset LATER GREETING FIRST || rc=$?
[ "$rc" -eq 0 ] && has "restarted $live" && [ ! -s "$T/env" ]
ok $? "env unset: the names gone, the app restarted"
accept_socket_stop "$RUN/myapp-env.sock"
rc=0; zdd env list || rc=$?
[ "$rc" -eq 1 ] && has "is myapp-env.socket running"
ok $? "env without the env socket: says so, exit 1"

# --- run: a one-off command in the live release, through run-serve -----------
# run-serve per connection (packets), in "current" as WorkingDirectory= puts it.
# shellcheck disable=SC2016 # the inner shell's $1 and $2
accept_socket "$RUN/myapp-run.sock" "$T/run-serve.log" sh -c 'cd "$1" && exec "$2" run-serve' sh "$ROOT/current" "$ZDD"
rc=0; "$ZDD" --config "$CONF" run 'echo out; echo err >&2; exit 3' > "$T/run.out" 2> "$T/run.err" || rc=$?
[ "$rc" -eq 3 ] && [ "$(cat "$T/run.out")" = out ] && [ "$(cat "$T/run.err")" = err ]
ok $? "run: stdout and stderr apart, the command's exit status returned (3)"
# shellcheck disable=SC2016 # for the shell of the run
words='"release $ZDD_RELEASE"'
rc=0; zdd run echo "$words" || rc=$?
[ "$rc" -eq 0 ] && has "^release $(current)\$" && grep -q "running 'echo \"release \$ZDD_RELEASE\"' in release $(current)" "$T/run-serve.log"
ok $? "run: bash runs the words in the live release; its journal names command and release"
rc=0; zdd run 'kill -TERM $$' || rc=$?
[ "$rc" -eq 143 ] && has "killed by signal 15"
ok $? "run: a command killed by a signal: 128 + N, said"
rc=0; "$ZDD" --config "$CONF" run 'head -c 300000 /dev/zero | tr "\0" a' > "$T/run.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] && [ "$(wc -c < "$T/run.out")" -eq 300000 ] && [ "$(tr -d a < "$T/run.out" | wc -c)" -eq 0 ]
ok $? "run: 300,000 bytes of output arrive whole"
start=$(date +%s)
rc=0; { timeout 20 "$ZDD" --config "$CONF" run 'echo first; sleep 8.25; echo second' | head -n 1; } > "$T/out" 2>&1 || rc=$?
elapsed=$(($(date +%s) - start))
i=0; while ! grep -q "the client went" "$T/run-serve.log" && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
[ "$rc" -eq 0 ] && has "^first\$" && ! has second && [ "$elapsed" -lt 4 ] &&
    grep -q "the client went, the command stopped" "$T/run-serve.log" && ! pgrep -f "sleep 8.25" > /dev/null
ok $? "run: its reader gone, the client ends and run-serve stops the command"
rc=0; zdd run "$(printf 'echo a\necho b')" || rc=$?
[ "$rc" -eq 2 ] && has "control character"
ok $? "run: a command of several lines is refused (exit 2)"
accept_socket_stop "$RUN/myapp-run.sock"
rc=0; zdd run true || rc=$?
[ "$rc" -eq 125 ] && has "is myapp-run.socket running"
ok $? "run without the run socket: says so, exit 125"

# --- DEPLOY_WEBHOOK: the history line of each deploy, POSTed after it ---------
cat > "$T/webhook.py" <<'EOF'
# A receiver on loopback: "ok" answers 200 and appends each body to a file;
# "mute" accepts connections and never answers. Its port goes to a file.
import http.server, socket, sys, time
mode, portfile, bodies = sys.argv[1:4]
if mode == "mute":
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    open(portfile, "w").write(str(s.getsockname()[1]))
    held = []
    while True:
        c, _ = s.accept()
        held.append(c)  # read nothing, answer nothing
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(bodies, "ab") as f:
            f.write(body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
open(portfile, "w").write(str(srv.server_address[1]))
srv.serve_forever()
EOF
start_receiver() { # mode: prints the port
	rm -f "$T/webhook.port"
	python3 "$T/webhook.py" "$1" "$T/webhook.port" "$T/webhook.bodies" > /dev/null 2>&1 &
	echo $! > "$T/webhook-$1.pid"
	i=0; while [ ! -s "$T/webhook.port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	cat "$T/webhook.port"
}
rc=0; "$ZDD" --config "$CONF" config check DEPLOY_WEBHOOK=ftp://example.org/x > "$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ]
ok $? "DEPLOY_WEBHOOK: only http:// or https:// URLs (exit 2 otherwise)"
port=$(start_receiver ok)
printf 'DEPLOY_WEBHOOK=http://127.0.0.1:%s/hook/s3cr3t-token\nDEPLOY_WEBHOOK_TIMEOUT=2\n' "$port" >> "$CONF"
: > "$T/webhook.bodies"
commit "webhook"; rc=0; push -f main || rc=$?
[ "$rc" -eq 0 ] && has "webhook: delivered (HTTP 200" && ! has "s3cr3t-token" &&
	[ "$(cat "$T/webhook.bodies")" = "$(tail -n 1 "$ROOT/deploys.jsonl")" ]
ok $? "webhook: a push POSTs its history line, byte for byte; the URL is not printed"
rc=0; zdd restart || rc=$?
[ "$rc" -eq 0 ] && [ "$(wc -l < "$T/webhook.bodies")" -eq 2 ] &&
	tail -n 1 "$T/webhook.bodies" | grep -q '"action":"restart"'
ok $? "webhook: a restart is one more line (action restart)"
kill "$(cat "$T/webhook-ok.pid")" 2>/dev/null || true
rm -f "$T/webhook-ok.pid"
port=$(start_receiver mute)
sed -i "s|^DEPLOY_WEBHOOK=.*|DEPLOY_WEBHOOK=http://127.0.0.1:$port/hook|" "$CONF"
lines=$(wc -l < "$ROOT/deploys.jsonl")
commit "webhook mute"; rc=0; push -f main || rc=$?
t1=$(date +%s%N)
[ "$rc" -eq 0 ] && has "webhook: not delivered" && has "deployed " &&
	[ "$(wc -l < "$ROOT/deploys.jsonl")" -eq $((lines + 1)) ]
ok $? "webhook that never answers: the push succeeds, says so, history written"
rc=0; zdd restart || rc=$?
t2=$(date +%s%N)
rc2=0; sed -i 's/^DEPLOY_WEBHOOK=.*/DEPLOY_WEBHOOK=/' "$CONF"; zdd restart || rc2=$?
t3=$(date +%s%N)
# the restart with the mute receiver takes its 2 s timeout and at most 1.5 s more than one without
[ "$rc" -eq 0 ] && [ "$rc2" -eq 0 ] && [ $(((t2 - t1) / 1000000)) -ge 2000 ] &&
	[ $(((t2 - t1) - (t3 - t2))) -le 3500000000 ]
ok $? "webhook that never answers delays a restart by its timeout, no more ($(((t2 - t1) / 1000000)) ms against $(((t3 - t2) / 1000000)) ms)"
kill "$(cat "$T/webhook-mute.pid")" 2>/dev/null || true
rm -f "$T/webhook-mute.pid"
sed -i '/^DEPLOY_WEBHOOK/d' "$CONF"

# --- launch: the units' ExecStart (Procfile, ./start, PATH, READY=1) ----------
L=$T/launch
mkdir -p "$L/.venv/bin"
# shellcheck disable=SC2016 # expanded by the script, not here
printf '#!/bin/sh\necho "venv tool $1"\n' > "$L/.venv/bin/vtool"
chmod 755 "$L/.venv/bin/vtool"
# shellcheck disable=SC2016 # expanded by bash -c in the launcher
printf 'web: echo "web ran FOO=$FOO" && vtool x\nworker: echo worker ran\n' > "$L/Procfile"
(cd "$L" && FOO=bar "$ZDD" launch web) > "$T/out" 2>&1
[ "$(head -1 "$T/out")" = "web ran FOO=bar" ] && has "venv tool x"
ok $? "launch: the Procfile's web through bash, with the environment and .venv/bin on PATH"
(cd "$L" && "$ZDD" launch worker) > "$T/out" 2>&1
has "worker ran"
ok $? "launch TYPE: another Procfile type"
rc=0; (cd "$L" && "$ZDD" launch cron) > "$T/out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && has "no 'cron:' process"
ok $? "launch: an undeclared type fails, saying so"
# Readiness health: READY=1 from the launcher's PID, before the exec.
notify_listen() { # SOCKET: prints what arrives within 3 s
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); s.settimeout(3)
try:
    print(s.recv(4096).decode().split("\n")[0])
except socket.timeout:
    print("nothing")
' "$1" < /dev/null
}
rm -f "$T/notify.sock"
notify_listen "$T/notify.sock" > "$T/notified" &
lp=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -S "$T/notify.sock" ] && break; sleep 0.1; done
(cd "$L" && NOTIFY_SOCKET=$T/notify.sock "$ZDD" launch web) > "$T/out" 2>&1
wait "$lp"
[ "$(cat "$T/notified")" = "READY=1" ]
ok $? "launch: a Procfile app (readiness health) is declared ready by the launcher"
rm -f "$L/Procfile" "$T/notify.sock"
printf '#!/bin/sh\necho "start ran"\n' > "$L/start"
chmod 755 "$L/start"
notify_listen "$T/notify.sock" > "$T/notified" &
lp=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -S "$T/notify.sock" ] && break; sleep 0.1; done
(cd "$L" && NOTIFY_SOCKET=$T/notify.sock "$ZDD" launch) > "$T/out" 2>&1
wait "$lp"
has "start ran" && [ "$(cat "$T/notified")" = "nothing" ]
ok $? "launch: no Procfile runs ./start, which sends READY=1 itself (the launcher sends nothing)"
# systemd's order is its own: the public socket must end up at fd 3.
# shellcheck disable=SC2016 # expanded by bash -c in the launcher
printf 'web: echo "fd3=$(readlink /proc/self/fd/3) fd4=$(readlink /proc/self/fd/4) names=$LISTEN_FDNAMES"\n' > "$L/Procfile"
: > "$T/probe.f"; : > "$T/public.f"
(cd "$L" && LISTEN_FDS=2 LISTEN_FDNAMES=probe:public "$ZDD" launch web 3< "$T/probe.f" 4< "$T/public.f") > "$T/out" 2>&1
has "fd3=$T/public.f fd4=$T/probe.f names=public:probe"
ok $? "launch: the public socket is moved to fd 3 (names follow)"
(cd "$L" && LISTEN_FDS=2 LISTEN_FDNAMES=myapp-probe.socket:myapp.socket "$ZDD" launch web 3< "$T/probe.f" 4< "$T/public.f") > "$T/out" 2>&1
has "fd3=$T/public.f fd4=$T/probe.f"
ok $? "launch: units without FileDescriptorName: the socket that is not a probe"
rm -f "$L/Procfile"
printf '{' > "$L/app.json"
rc=0; (cd "$L" && "$ZDD" launch) > "$T/out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && has "app.json is not valid JSON"
ok $? "launch: a broken app.json fails, saying why"

# --- privilege drop (as root) ---------------------------------------------------------
if [ "$(id -u)" -eq 0 ] && id nobody > /dev/null 2>&1; then
	P=$T/drop
	mkdir -p "$P/www"
	chown nobody "$P/www"
	chmod 755 "$T" "$P"
	printf 'DEPLOY_USER=nobody\nAPP_ROOT=%s/www\nREPO=%s\n' "$P" \
	    "$T/repo.git" > "$P/conf"
	rc=0; "$ZDD" --config "$P/conf" prune > "$T/out" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] && [ "$(stat -c %U "$P/www/.deploy.lock")" = nobody ]
	ok $? "started as root: drops to DEPLOY_USER (lock file owned by nobody)"
	printf 'DEPLOY_USER=nosuchuser\n' > "$P/conf2"
	rc=0; "$ZDD" --config "$P/conf2" releases > "$T/out" 2>&1 || rc=$?
	[ "$rc" -eq 2 ] && has "no such user"
	ok $? "unknown DEPLOY_USER: exit 2, says so"
else
	echo "ok $((n = n + 1)) # SKIP privilege drop needs root and user nobody"
fi

if ls "$T"/sanitizer* > /dev/null 2>&1; then
	cat "$T"/sanitizer* > "$T/out"; ok 1 "no sanitizer reports"
else
	ok 0 "no sanitizer reports"
fi

echo "1..$n"
echo "# $((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
