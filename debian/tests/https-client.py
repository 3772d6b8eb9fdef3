#!/usr/bin/python3
"""A bounded HTTPS client for the https and letsencrypt autopkgtests.

https-client.py CAFILE STOPFILE MAX_REQUESTS MAX_SECONDS: GET /api/status,
every fifth request a POST /api/notes, to https://zdd.test on 127.0.0.1:443,
trusting CAFILE only, each on a new connection (a kept-alive one is closed by
any nginx reload, which is not what is measured), until STOPFILE exists or a
bound is reached; then reads every acknowledged note back. Prints
"sent N failed N written N lost N [what failed]".
"""
import http.client
import json
import os
import socket
import ssl
import sys
import time

cafile, stop, max_requests, max_seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
ctx = ssl.create_default_context(cafile=cafile)


def request(method, path, body=None):
    conn = http.client.HTTPConnection("zdd.test", 443, timeout=10)
    # zdd.test is 127.0.0.1 (no DNS here); the name is the certificate's
    conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 443), 10), server_hostname="zdd.test")
    headers = {"Host": "zdd.test"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body, headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


sent, failed, ids = 0, [], []
t0 = time.monotonic()
while sent < max_requests and time.monotonic() - t0 < max_seconds and not os.path.exists(stop):
    sent += 1
    try:
        if sent % 5 == 0:
            status, data = request("POST", "/api/notes", json.dumps({"text": "tls %d" % sent}))
            if status == 201:
                ids.append(json.loads(data)["id"])
        else:
            status, _ = request("GET", "/api/status")
        if status not in (200, 201):
            failed.append(str(status))
    except (OSError, http.client.HTTPException, ValueError) as e:
        failed.append(type(e).__name__)
    time.sleep(0.02)
lost = 0
for i in ids:
    try:
        if request("GET", "/api/notes/%d" % i)[0] != 200:
            lost += 1
    except (OSError, http.client.HTTPException):
        lost += 1
print("sent %d failed %d written %d lost %d %s" % (sent, len(failed), len(ids), lost, " ".join(failed[:10])))
