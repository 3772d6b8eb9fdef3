#!/usr/bin/python3
"""A small HTTP/1.1 server for zdd-load's integration tests.

Speaks just enough of the app's API (GET /api/status, POST /api/notes ->
201 {"id":N}, GET /api/notes/<id>) and misbehaves on request: reset every
Nth request, close mid-response, say "Connection: close", answer slowly,
use chunked bodies, close idle connections, forget or alter a note, answer
a POST without its id.
Usable as a module (FaultServer) or alone: fault_server.py --tcp 127.0.0.1:8080.
"""

import argparse
import json
import socket
import socketserver
import struct
import threading
import time


class Faults:
    def __init__(self, **kw):
        self.reset_every = kw.get("reset_every", 0)      # RST instead of an answer
        self.cut_every = kw.get("cut_every", 0)          # half a body, then close
        self.close_every = kw.get("close_every", 0)      # answer with Connection: close
        self.slow_every = kw.get("slow_every", 0)        # answer after slow_s
        self.slow_s = kw.get("slow_s", 1.0)
        self.delay_s = kw.get("delay_s", 0.0)            # every answer waits this long
        self.chunked = kw.get("chunked", False)
        self.idle_close_s = kw.get("idle_close_s", 0.0)  # close keep-alive idle connections
        self.forget_ids = set(kw.get("forget_ids", ()))  # acknowledged but never stored
        self.alter_ids = set(kw.get("alter_ids", ()))    # stored with another text
        self.no_id_ids = set(kw.get("no_id_ids", ()))    # stored, but the 201 carries no id
        # on a reused connection, every Nth request: close without a word
        # (what an nginx reload does to an idle client connection), not stored
        self.drop_reused_every = kw.get("drop_reused_every", 0)


class State:
    def __init__(self, faults):
        self.faults = faults
        self.lock = threading.Lock()
        self.requests = 0
        self.notes = {}
        self.next_id = 1

    def count(self):
        with self.lock:
            self.requests += 1
            return self.requests

    def add_note(self, text):
        with self.lock:
            nid = self.next_id
            self.next_id += 1
            if nid in self.faults.forget_ids:
                return nid
            self.notes[nid] = text + " (altered)" if nid in self.faults.alter_ids else text
            return nid


def every(n, i):
    return n > 0 and i % n == 0


class Handler(socketserver.BaseRequestHandler):
    def read_request(self, conn, buf):
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return None, buf
            buf += data
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(buf) < length:
            data = conn.recv(65536)
            if not data:
                return None, buf
            buf += data
        return (method, path, headers, buf[:length]), buf[length:]

    def route(self, method, path, body):
        state = self.server.state
        if method == "GET" and path == "/api/status":
            return 200, {"status": "ok"}
        if method == "POST" and path == "/api/notes":
            text = json.loads(body)["text"]
            nid = state.add_note(text)
            return 201, ({"stored": True} if nid in state.faults.no_id_ids else {"id": nid})
        if method == "GET" and path.startswith("/api/notes/"):
            nid = int(path.rsplit("/", 1)[1])
            with state.lock:
                text = state.notes.get(nid)
            if text is None:
                return 404, {"error": "not found"}
            return 200, {"id": nid, "text": text}
        return 404, {"error": "no route"}

    def handle(self):
        conn = self.request
        state = self.server.state
        f = state.faults
        buf = b""
        served = 0
        while True:
            if f.idle_close_s and not buf:
                conn.settimeout(f.idle_close_s)
            try:
                req, buf = self.read_request(conn, buf)
            except (socket.timeout, ConnectionError):
                return
            conn.settimeout(None)
            if req is None:
                return
            method, path, headers, body = req
            served += 1
            if served > 1 and f.drop_reused_every:
                with state.lock:
                    state.reused = getattr(state, "reused", 0) + 1
                    drop = state.reused % f.drop_reused_every == 0
                    if drop:
                        state.dropped = getattr(state, "dropped", 0) + 1
                if drop:
                    conn.close()
                    return
            i = state.count()
            if every(f.reset_every, i):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                return
            status, obj = self.route(method, path, body)
            if f.delay_s:
                time.sleep(f.delay_s)
            if every(f.slow_every, i):
                time.sleep(f.slow_s)
            payload = json.dumps(obj).encode()
            close = headers.get("connection", "").lower() == "close" or every(f.close_every, i)
            reason = {200: "OK", 201: "Created", 404: "Not Found"}[status]
            head = "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n" % (status, reason)
            if close:
                head += "Connection: close\r\n"
            try:
                if every(f.cut_every, i):
                    conn.sendall((head + "Content-Length: %d\r\n\r\n" % (len(payload) + 50)).encode() + payload)
                    return
                if f.chunked:
                    half = len(payload) // 2
                    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (payload[:half], payload[half:]) if c)
                    conn.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunks + b"0\r\n\r\n")
                else:
                    conn.sendall((head + "Content-Length: %d\r\n\r\n" % len(payload)).encode() + payload)
            except OSError:
                return
            if close:
                return


class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 1024


class FaultServer:
    """Runs in a thread; .address is what to pass to zdd-load."""

    def __init__(self, unix_path=None, **faults):
        self.state = State(Faults(**faults))
        if unix_path:
            self.server = UnixServer(unix_path, Handler)
            self.args = ["--unix", unix_path]
        else:
            self.server = TCPServer(("127.0.0.1", 0), Handler)
            self.args = ["--tcp", "127.0.0.1:%d" % self.server.server_address[1]]
        self.server.state = self.state
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tcp", default="127.0.0.1:8080")
    p.add_argument("--unix")
    p.add_argument("--reset-every", type=int, default=0)
    p.add_argument("--cut-every", type=int, default=0)
    p.add_argument("--close-every", type=int, default=0)
    a = p.parse_args()
    faults = Faults(reset_every=a.reset_every, cut_every=a.cut_every, close_every=a.close_every)
    if a.unix:
        srv = UnixServer(a.unix, Handler)
    else:
        host, port = a.tcp.rsplit(":", 1)
        srv = TCPServer((host, int(port)), Handler)
    srv.state = State(faults)
    srv.serve_forever()


if __name__ == "__main__":
    main()
