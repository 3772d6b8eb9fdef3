#!/usr/bin/python3
"""TAP test: the Python example app (python-app/start) keeps the release
contract when started the way systemd starts it: sockets at fd 3 and 4
(LISTEN_FDS), READY=1 on NOTIFY_SOCKET, drain on SIGTERM, and the
listening sockets left intact for the next instance."""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
START = os.path.join(HERE, "python-app", "start")
results = []


def ok(cond, desc):
    results.append(bool(cond))
    print("%sok %d - %s" % ("" if cond else "not ", len(results), desc),
          flush=True)


def get(path, sock_path, timeout=5):
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
    return data


def launch(tmp, public, probe, notify, release):
    def fds():
        os.dup2(public.fileno(), 3)
        os.dup2(probe.fileno(), 4)
    env = {"PATH": "/usr/bin:/bin", "LISTEN_FDS": "2",
           "LISTEN_FDNAMES": "myapp.socket:probe",
           "NOTIFY_SOCKET": notify, "ZDD_RELEASE": release}
    # LISTEN_PID must be the app's own pid: set it in the shell that execs.
    return subprocess.Popen(["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0"',
                             START], cwd=tmp, env=env, preexec_fn=fds,
                            pass_fds=(3, 4))


def wait_ready(n, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            if b"READY=1" in n.recv(256):  # skips an earlier STOPPING=1
                return True
        except socket.timeout:
            return False
    return False


def main():
    tmp = tempfile.mkdtemp(prefix="zdd-app.")
    with open(os.path.join(tmp, "REVISION"), "w") as f:
        f.write("cafe1234\n")
    public_path = os.path.join(tmp, "public.sock")
    probe_path = os.path.join(tmp, "probe.sock")
    notify_path = os.path.join(tmp, "notify.sock")
    public = socket.socket(socket.AF_UNIX)
    public.bind(public_path)
    public.listen(64)
    probe = socket.socket(socket.AF_UNIX)
    probe.bind(probe_path)
    probe.listen(64)
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.bind(notify_path)

    app = launch(tmp, public, probe, notify_path, "r1")
    ok(wait_ready(n), "READY=1 sent on NOTIFY_SOCKET")
    r = get("/healthz", probe_path)
    ok(r.startswith(b"HTTP/1.1 200") and b"cafe1234 r1" in r,
       "GET /healthz on the probe socket (fd 4): 200 with revision")
    r = get("/", public_path)
    ok(r.startswith(b"HTTP/1.1 200"), "GET / on the public socket (fd 3)")

    slow = {}
    t = threading.Thread(target=lambda: slow.update(r=get("/slow",
                                                         public_path, 10)))
    t.start()
    time.sleep(0.3)
    app.terminate()
    t0 = time.monotonic()
    rc = app.wait(timeout=10)
    t.join(timeout=10)
    took = time.monotonic() - t0
    ok(rc == 0 and 0.4 < took < 5,
       "SIGTERM: waits for the in-flight request, exits 0 (%.1f s)" % took)
    ok(slow.get("r", b"").startswith(b"HTTP/1.1 200") and
       b"Connection: close" in slow.get("r", b""),
       "request in flight at SIGTERM finished with Connection: close")

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

    app2 = launch(tmp, public, probe, notify_path, "r2")
    ok(wait_ready(n), "a second instance gets READY on the same sockets")
    c.settimeout(5)
    try:
        queued_reply = c.recv(4096)
    except OSError:
        queued_reply = b""
    c.close()
    ok(queued_reply.startswith(b"HTTP/1.1 200") and b"r2" in queued_reply,
       "the queued connection is served by the next instance")
    app2.terminate()
    ok(app2.wait(timeout=10) == 0, "second instance exits 0 on SIGTERM")

    for p in (public_path, probe_path, notify_path):
        os.unlink(p)
    os.unlink(os.path.join(tmp, "REVISION"))
    os.rmdir(tmp)
    print("1..%d" % len(results))
    print("# %d passed, %d failed" % (results.count(True),
                                      results.count(False)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
