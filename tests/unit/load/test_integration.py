#!/usr/bin/python3
"""Integration tests: zdd-load against fault_server.py on loopback and UNIX
sockets, asserting exact outcome counts. Prints TAP and "N passed, N failed".
Usage: test_integration.py PATH/TO/zdd-load"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_server import FaultServer  # noqa: E402

ZDD_LOAD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "./zdd-load")
TMP = tempfile.mkdtemp(prefix="zdd-load-test.")
results = []


def ok(cond, name):
    results.append(bool(cond))
    print("%s %d - %s" % ("ok" if cond else "not ok", len(results), name), flush=True)
    return cond


def run(args, timeout=60):
    """Runs zdd-load; returns (exit status, JSON report, stdout)."""
    out = os.path.join(TMP, "report.json")
    if os.path.exists(out):
        os.unlink(out)
    p = subprocess.run([ZDD_LOAD, "--json", out] + args, capture_output=True, text=True, timeout=timeout)
    report = None
    if os.path.exists(out):
        with open(out) as f:
            report = json.load(f)
    if p.returncode not in (0, 1) or report is None:
        print("# exit %d\n# stdout: %s\n# stderr: %s" % (p.returncode, p.stdout, p.stderr))
    return p.returncode, report, p.stdout


def show(report):
    print("# " + json.dumps({k: report[k] for k in ("sent", "ok", "failed", "failures", "writes", "client")}))


def test_plain_mix():
    with FaultServer() as srv:
        rc, r, _ = run(srv.args + ["--rate", "250", "--duration", "2", "--post-ratio", "0.2", "--verify",
                                   "--fail-on-error", "--timeline", os.path.join(TMP, "t.csv"),
                                   "--requests", os.path.join(TMP, "r.csv")])
    show(r)
    ok(rc == 0 and r["sent"] == 500 and r["ok"] == 500 and r["failed"] == 0,
       "500 requests at 250 req/s over TCP keep-alive: 500 ok")
    w = r["writes"]
    ok(w["acknowledged"] == 100 and w["verified"] == 100 and w["lost"] == 0 and w["unverifiable"] == 0
       and w["posts_2xx_without_id"] == 0 and w["nothing_acknowledged"] is False,
       "20 % POSTs: 100 acknowledged, 100 read back, 0 lost")
    ok(srv.state.requests == 600, "server saw 500 + 100 read-backs (saw %d)" % srv.state.requests)
    with open(os.path.join(TMP, "t.csv")) as f:
        rows = f.read().splitlines()
    sent = sum(int(line.split(",")[2]) for line in rows[1:])
    ok(rows[0].startswith("t_ms,epoch_ms,sent,ok,errors,p50_ms,p99_ms,max_ms") and len(rows) >= 21 and sent == 500,
       "timeline: 100 ms rows adding up to 500 sent (%d rows)" % (len(rows) - 1))
    # A figure, not a speed goal: a loaded CI machine served 18 in one 100 ms once (180 req/s).
    low = r["whole"]["lowest_100ms_rps"]
    ok(low is not None and 0 < low <= 2 * 250,
       "lowest 100 ms throughput measured, within what 250 req/s offered can give (%s)" % low)
    with open(os.path.join(TMP, "r.csv")) as f:
        rows = [line.split(",") for line in f.read().splitlines()]
    body = rows[1:]
    steps = {int(b[0]) - int(a[0]) for a, b in zip(body, body[1:])}
    ok(rows[0] == ["epoch_us", "latency_us", "queued_us", "fresh", "post", "outcome", "status"] and len(body) == 500
       and steps == {4000} and sum(int(x[4]) for x in body) == 100
       and all(x[5] == "http" and x[6] == "200" or x[4] == "1" and x[6] == "201" for x in body)
       and 1 <= sum(int(x[3]) for x in body) <= 64 and all(int(x[2]) <= int(x[1]) for x in body),
       "requests: 500 rows 4 ms apart, 100 POSTs, every status, at most 64 new connections")


def test_unix_no_keepalive():
    path = os.path.join(TMP, "s.sock")
    with FaultServer(unix_path=path) as srv:
        rc, r, _ = run(srv.args + ["--rate", "200", "--duration", "1", "--no-keepalive", "--fail-on-error"])
    show(r)
    ok(rc == 0 and r["ok"] == 200 and r["client"]["connects"] == 200,
       "UNIX socket without keep-alive: 200 ok over 200 connections")
    os.unlink(path)


def test_resets():
    with FaultServer(reset_every=10) as srv:
        rc, r, _ = run(srv.args + ["--rate", "250", "--duration", "2", "--fail-on-error"])
    show(r)
    ok(rc == 1 and r["failures"]["reset"] == 50 and r["ok"] == 450 and r["failed"] == 50,
       "server resets every 10th request: exactly 50 resets counted, exit 1")


def test_cut_and_close():
    with FaultServer(cut_every=25, close_every=4) as srv:
        rc, r, _ = run(srv.args + ["--rate", "250", "--duration", "2"])
    show(r)
    ok(rc == 0 and r["failures"]["eof"] == 20 and r["ok"] == 480,
       "close mid-response every 25th: 20 EOF errors; Connection: close answers count as ok")
    ok(r["client"]["resent_unsent"] == 0 and r["client"]["connects"] >= 120,
       "reconnects after Connection: close, nothing resent (%d connects)" % r["client"]["connects"])


def test_chunked_verify():
    with FaultServer(chunked=True) as srv:
        rc, r, _ = run(srv.args + ["--rate", "200", "--duration", "1", "--post-ratio", "0.5", "--verify",
                                   "--fail-on-error"])
    show(r)
    ok(rc == 0 and r["ok"] == 200 and r["writes"]["acknowledged"] == 100 and r["writes"]["verified"] == 100,
       "chunked answers: 200 ok, 100 acknowledged ids parsed and read back")


def test_lost_writes():
    with FaultServer(forget_ids=[3], alter_ids=[7]) as srv:
        rc, r, out = run(srv.args + ["--rate", "100", "--duration", "1", "--post-ratio", "0.2", "--verify",
                                     "--fail-on-error"])
    show(r)
    w = r["writes"]
    ok(r["failed"] == 0 and w["acknowledged"] == 20, "every POST acknowledged (%d)" % w["acknowledged"])
    ok(rc == 1 and w["lost"] == 2 and w["lost_404"] == 1 and w["lost_mismatch"] == 1 and w["verified"] == 18,
       "a forgotten note and an altered one: lost = 2 (404 1, mismatch 1), exit 1")
    ok("LOST 2" in out, "the text summary shows LOST 2")


def test_no_id():
    with FaultServer(no_id_ids=[4]) as srv:
        rc, r, out = run(srv.args + ["--rate", "100", "--duration", "1", "--post-ratio", "0.2", "--verify",
                                     "--fail-on-error"])
    show(r)
    w = r["writes"]
    ok(rc == 1 and r["failed"] == 0 and w["posts_2xx_without_id"] == 1 and w["acknowledged"] == 19
       and w["verified"] == 19 and not w["nothing_acknowledged"],
       "a 201 without an id: posts_2xx_without_id 1, 19 acknowledged and verified, exit 1")


def test_nothing_acknowledged():
    with FaultServer() as srv:
        rc, r, out = run(srv.args + ["--rate", "100", "--duration", "0.5", "--verify", "--fail-on-error"])
    show(r)
    w = r["writes"]
    ok(rc == 1 and r["failed"] == 0 and r["ok"] == 50 and w["acknowledged"] == 0 and w["verified"] == 0
       and w["nothing_acknowledged"] is True and "NOTHING ACKNOWLEDGED" in out,
       "--verify with no write acknowledged: said in the text and the JSON, exit 1 with --fail-on-error")
    with FaultServer() as srv:
        rc, r, out = run(srv.args + ["--rate", "100", "--duration", "0.5", "--verify"])
    ok(rc == 0 and r["writes"]["nothing_acknowledged"] is True, "... and exit 0 without --fail-on-error")


def test_idle_close():
    with FaultServer(idle_close_s=0.03) as srv:
        rc, r, _ = run(srv.args + ["--rate", "10", "--duration", "2", "--connections", "1", "--fail-on-error"])
    show(r)
    ok(rc == 0 and r["ok"] == 20 and r["client"]["idle_closed"] >= 15,
       "server closes idle keep-alive connections: not an error (%d idle closes)" % r["client"]["idle_closed"])


def test_retry_reused():
    with FaultServer(drop_reused_every=20) as srv:
        rc, r, _ = run(srv.args + ["--rate", "250", "--duration", "2", "--post-ratio", "0.2", "--verify"])
        dropped = getattr(srv.state, "dropped", 0)
    show(r)
    # (the read-back's drops make writes unverifiable)
    ok(dropped > 0 and r["failed"] + r["writes"]["unverifiable"] == dropped
       and r["failures"]["eof"] + r["failures"]["reset"] == r["failed"] and r["client"]["resent_reused"] == 0,
       "a reused connection closed unanswered: a failure, not resent, by default (%d dropped)" % dropped)
    with FaultServer(drop_reused_every=20) as srv:
        rc, r, _ = run(srv.args + ["--rate", "250", "--duration", "2", "--post-ratio", "0.2", "--verify", "--retry-reused",
                                   "--fail-on-error"])
        dropped = getattr(srv.state, "dropped", 0)
    show(r)
    ok(rc == 0 and dropped > 0 and r["failed"] == 0 and 0 < r["client"]["resent_reused"] <= dropped
       and r["writes"]["acknowledged"] > 0 and r["writes"]["lost"] == 0 and r["writes"]["unverifiable"] == 0,
       "--retry-reused: each resent once on a new connection, none failed, none lost (%d)" % dropped)


def test_timeout_and_overload():
    with FaultServer(slow_every=10, slow_s=1.0) as srv:
        rc, r, _ = run(srv.args + ["--rate", "100", "--duration", "1", "--timeout", "300"])
    show(r)
    ok(r["failures"]["timeout"] == 10 and r["ok"] == 90, "every 10th answer takes 1 s, --timeout 300: 10 timeouts")
    with FaultServer(delay_s=0.1) as srv:
        rc, r, _ = run(srv.args + ["--rate", "100", "--duration", "1", "--connections", "2", "--max-pending", "5"])
    show(r)
    f = r["failures"]
    ok(f["overload"] > 50 and r["ok"] + f["overload"] + f["timeout"] == 100 and r["ok"] >= 15,
       "2 connections, 100 ms answers, 100 req/s: overload counted, every request accounted for "
       "(ok %d, overload %d)" % (r["ok"], f["overload"]))
    ok(r["whole"]["p50_ms"] >= 100, "latency counts the wait for a connection (p50 %.1f ms)" % r["whole"]["p50_ms"])


def test_refused():
    rc, r, _ = run(["--unix", os.path.join(TMP, "nobody.sock"), "--rate", "100", "--duration", "0.5"])
    ok(r["failures"]["refused"] == 50 and r["failed"] == 50, "no UNIX socket: 50 refused")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there now
    rc, r, _ = run(["--tcp", "127.0.0.1:%d" % port, "--rate", "100", "--duration", "0.5"])
    ok(r["failures"]["refused"] == 50, "closed TCP port: 50 refused")


def test_backlog_full():
    path = os.path.join(TMP, "full.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(0)  # never accepts: the backlog fills, then connect says EAGAIN
    try:
        rc, r, _ = run(["--unix", path, "--rate", "100", "--duration", "0.5", "--no-keepalive", "--timeout", "300"])
    finally:
        s.close()
        os.unlink(path)
    show(r)
    f = r["failures"]
    ok(f["connect_eagain"] >= 40 and f["connect_eagain"] + f["timeout"] == 50,
       "UNIX backlog full: connect EAGAIN counted apart (%d eagain, %d timeout)"
       % (f["connect_eagain"], f["timeout"]))


def test_windows():
    wpath = os.path.join(TMP, "windows.txt")
    now = int(time.time() * 1000)
    with open(wpath, "w") as f:
        # written before the run for the test; the driver writes it during one
        f.write("# start end label\n%d %d first\n%d %d second\n" % (now + 500, now + 1000, now + 1500, now + 1600))
    with FaultServer() as srv:
        rc, r, out = run(srv.args + ["--rate", "100", "--duration", "2", "--windows", wpath])
    wins = r["windows"]
    ok(len(wins) == 2 and wins[0]["label"] == "first" and wins[1]["label"] == "second", "two windows reported")
    c0, c1 = wins[0]["count"], wins[1]["count"]
    ok(45 <= c0 <= 55 and 8 <= c1 <= 12, "window counts follow their length (%d, %d)" % (c0, c1))
    ok(r["all_windows"]["count"] == c0 + c1 and r["outside_windows"]["count"] == 200 - c0 - c1,
       "all windows = sum; outside = the rest")
    ok("first" in out and "all windows" in out, "windows in the text table")


def test_refuses_nonloopback():
    p = subprocess.run([ZDD_LOAD, "--tcp", "192.0.2.1:80", "--rate", "1", "--duration", "1"],
                       capture_output=True, text=True, timeout=10)
    ok(p.returncode == 2 and "not a loopback" in p.stderr, "refuses a non-loopback target")
    p = subprocess.run([ZDD_LOAD, "--tcp", "127.0.0.1:1", "--rate", "1000000", "--duration", "600"],
                       capture_output=True, text=True, timeout=10)
    ok(p.returncode == 2, "refuses more than 10^7 requests")


def test_cpu_slice():
    p = subprocess.run([ZDD_LOAD, "--tcp", "127.0.0.1:1", "--rate", "1", "--duration", "1", "--cpu-slice-us", "99"],
                       capture_output=True, text=True, timeout=10)
    ok(p.returncode == 2 and "cpu-slice-us" in p.stderr, "refuses a CPU slice under 100 us")
    release = tuple(int(x) for x in os.uname().release.split(".")[:2])
    with FaultServer() as srv:
        rc, r, _ = run(srv.args + ["--rate", "100", "--duration", "1", "--cpu-slice-us", "100"])
    if release >= (6, 12):
        ok(rc == 0 and r is not None and r["ok"] == r["sent"] == 100,
           "kernel 6.12+: runs with a 100 us slice, 100 of 100 ok")
    else:
        ok(rc == 2, "kernel before 6.12: --cpu-slice-us is refused (exit 2)")


def main():
    tests = [test_plain_mix, test_unix_no_keepalive, test_resets, test_cut_and_close, test_chunked_verify,
             test_lost_writes, test_no_id, test_nothing_acknowledged, test_idle_close, test_retry_reused, test_timeout_and_overload,
             test_refused, test_backlog_full,
             test_windows, test_refuses_nonloopback, test_cpu_slice]
    for t in tests:
        print("# " + t.__name__, flush=True)
        try:
            t()
        except Exception as e:  # a crash is a failure, not an abort
            ok(False, "%s raised %r" % (t.__name__, e))
    failed = results.count(False)
    print("1..%d" % len(results))
    print("%d passed, %d failed" % (len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
