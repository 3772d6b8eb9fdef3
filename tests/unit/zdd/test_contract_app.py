#!/usr/bin/python3
"""TAP test: the Python example app (tests/apps/python/start, the one the
autopkgtests deploy) keeps the release contract when started the way
systemd starts it: sockets at fd 3 and 4 (LISTEN_FDS) with O_NONBLOCK
cleared, READY=1 on NOTIFY_SOCKET, drain on SIGTERM, and the listening
sockets left intact for the next instance; and its test modes (`sick`,
`never-ready`) misbehave as the autopkgtests expect."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
START = os.path.join(HERE, "..", "..", "apps", "python", "start")
results = []


def ok(cond, desc, got=None):
    results.append(bool(cond))
    print("%sok %d - %s" % ("" if cond else "not ", len(results), desc),
          flush=True)
    if not cond and got is not None:
        print("# got %r" % (got,), flush=True)


def get(path, sock_path, timeout=5):
    """GET over a UNIX socket: (raw answer, JSON body or None)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock_path)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return data, body_json(data)


def body_json(data):
    try:
        return json.loads(data.split(b"\r\n\r\n", 1)[1])
    except (IndexError, ValueError):
        return None


class App:
    """One instance started as systemd starts it, in release directory
    `rel` (created, with REVISION and an optional `mode` file)."""

    def __init__(self, tmp, rel, public, probe, mode=None):
        self.dir = os.path.join(tmp, rel)
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "REVISION"), "w") as f:
            f.write("cafe1234\n")
        if mode:
            with open(os.path.join(self.dir, "mode"), "w") as f:
                f.write(mode + "\n")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify_path = os.path.join(tmp, "notify-%s.sock" % rel)
        self.notify.bind(notify_path)
        state = os.path.join(tmp, "state")
        os.makedirs(state, exist_ok=True)
        # systemd clears O_NONBLOCK on the sockets at every start, for every
        # process sharing them (NonBlocking= is off by default).
        public.setblocking(True)
        probe.setblocking(True)

        def fds():
            os.dup2(public.fileno(), 3)
            os.dup2(probe.fileno(), 4)
        env = {"PATH": "/usr/bin:/bin", "LISTEN_FDS": "2",
               "LISTEN_FDNAMES": "myapp.socket:probe",
               "NOTIFY_SOCKET": notify_path, "ZDD_RELEASE": rel,
               "STATE_DIRECTORY": state}
        # LISTEN_PID must be the app's own pid: set it in the shell that
        # execs.
        self.proc = subprocess.Popen(
            ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0"', START],
            cwd=self.dir, env=env, preexec_fn=fds, pass_fds=(3, 4))

    def wait_ready(self, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.notify.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                if b"READY=1" in self.notify.recv(256).split(b"\n"):
                    return True
            except socket.timeout:
                return False
        return False

    def stop(self, timeout=10):
        """SIGTERM; returns (exit code, seconds taken)."""
        self.proc.terminate()
        t0 = time.monotonic()
        rc = self.proc.wait(timeout=timeout)
        self.notify.close()
        return rc, time.monotonic() - t0


def nonblocking_soon(sock, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.get_blocking(sock.fileno()):
            return True
        time.sleep(0.05)
    return False


def main():
    tmp = tempfile.mkdtemp(prefix="zdd-app.")
    public_path = os.path.join(tmp, "public.sock")
    probe_path = os.path.join(tmp, "probe.sock")
    public = socket.socket(socket.AF_UNIX)
    public.bind(public_path)
    public.listen(64)
    probe = socket.socket(socket.AF_UNIX)
    probe.bind(probe_path)
    probe.listen(64)

    app = App(tmp, "r1", public, probe)
    ok(app.wait_ready(), "READY=1 sent on NOTIFY_SOCKET")
    ok(not os.get_blocking(public.fileno()) and
       not os.get_blocking(probe.fileno()),
       "the app made the shared sockets non-blocking (systemd cleared it)")
    r, j = get("/healthz", probe_path)
    ok(r.startswith(b"HTTP/1.1 200") and j is not None and
       j.get("revision") == "cafe1234" and j.get("release") == "r1",
       "GET /healthz on the probe socket (fd 4): 200, REVISION and "
       "ZDD_RELEASE", r)
    # Another instance starting clears O_NONBLOCK again under the running
    # one: it must set it again, or its accept() could block.
    public.setblocking(True)
    r, j = get("/api/status", public_path)
    ok(r.startswith(b"HTTP/1.1 200") and j is not None and
       j.get("app") == "python",
       "GET /api/status on the public socket (fd 3): 200")
    ok(nonblocking_soon(public),
       "O_NONBLOCK cleared under it (another start): set again on accept")

    slow = {}
    t = threading.Thread(target=lambda: slow.update(
        r=get("/slow", public_path, 10)))
    t.start()
    time.sleep(0.3)
    rc, took = app.stop()
    t.join(timeout=10)
    ok(rc == 0 and 0.4 < took < 5,
       "SIGTERM: waits for the in-flight request, exits 0 (%.1f s)" % took)
    r, j = slow.get("r", (b"", None))
    ok(r.startswith(b"HTTP/1.1 200") and b"Connection: close" in r and
       j is not None and j.get("stopping") is True,
       "request in flight at SIGTERM answered after it, "
       "with Connection: close")

    # The listening socket must still accept connections (backlog): the
    # app neither closed nor shut it down.
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(2)
    try:
        c.connect(public_path)
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        queued = True
    except OSError:
        queued = False
    ok(queued, "listening socket intact after exit (connection queues)")

    app2 = App(tmp, "r2", public, probe)
    ok(app2.wait_ready(), "a second instance gets READY on the same sockets")
    c.settimeout(5)
    queued_reply = b""
    try:
        while True:
            chunk = c.recv(4096)
            if not chunk:
                break
            queued_reply += chunk
    except OSError:
        pass
    c.close()
    j = body_json(queued_reply)
    ok(queued_reply.startswith(b"HTTP/1.1 200") and j is not None and
       j.get("release") == "r2",
       "the queued connection is served by the next instance")
    rc, _ = app2.stop()
    ok(rc == 0, "second instance exits 0 on SIGTERM")

    # The misbehaviours the autopkgtests deploy (a `mode` file).
    sick = App(tmp, "sick", public, probe, mode="sick")
    ok(sick.wait_ready(), "mode sick: READY=1 all the same")
    r, _ = get("/healthz", probe_path)
    ok(r.startswith(b"HTTP/1.1 500"), "mode sick: GET /healthz answers 500")
    r, _ = get("/api/status", probe_path)
    ok(r.startswith(b"HTTP/1.1 200"), "mode sick: other paths answer 200")
    rc, _ = sick.stop()
    ok(rc == 0, "mode sick: exits 0 on SIGTERM")

    stuck = App(tmp, "never", public, probe, mode="never-ready")
    ok(nonblocking_soon(public) and nonblocking_soon(probe),
       "mode never-ready: still makes the sockets non-blocking first")
    ok(not stuck.wait_ready(timeout=2),
       "mode never-ready: no READY=1 (2 s)")
    ok(stuck.proc.poll() is None, "mode never-ready: still running")
    stuck.proc.kill()
    stuck.proc.wait(timeout=10)
    stuck.notify.close()

    public.close()
    probe.close()
    shutil.rmtree(tmp)
    print("1..%d" % len(results))
    print("# %d passed, %d failed" % (results.count(True),
                                      results.count(False)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
