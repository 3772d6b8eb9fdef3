#!/bin/sh
# Experiment (issue 16, "what a reload provably must drop"): HTTPS clients
# that keep their connection alive, through nginx reloads (what certbot's
# deploy hook does after a renewal). Each reload closes the idle keep-alive
# connections of nginx's old workers; a request a client writes onto one at
# that moment gets no answer. The client counts those, resends each once on
# a new connection (as browsers do for a reused connection), and reports
# what still failed. Run as root from the source tree inside the testbed
# where the package is installed:
#   tests/machines/testbed/testbed exec trixie --src . --deb build/myapp-zdd_*_amd64.deb \
#       -- sh tests/bench/experiments/tls-reload.sh
set -eu
# shellcheck source=debian/tests/lib.sh
. debian/tests/lib.sh
work=$(mktemp -d)
tls=/etc/ssl/zdd-experiment
rm -rf "$tls"
mkdir -m 0755 "$tls"
test_ca "$work/ca.key" "$tls/ca.pem" zdd-experiment-ca
test_cert "$work/ca.key" "$tls/ca.pem" "$tls/site.key" "$tls/site.pem" DNS:zdd.test
chmod 0600 "$tls/site.key"
set_server_conf HTTPS=certificate "TLS_CERTIFICATE=$tls/site.pem" "TLS_KEY=$tls/site.key"
dpkg-reconfigure -f noninteractive myapp-zdd >/dev/null
sleep 1
RELOADS=${RELOADS:-5} python3 - "$tls/ca.pem" <<'EOF'
import http.client, os, socket, ssl, subprocess, sys, threading, time
ctx = ssl.create_default_context(cafile=sys.argv[1])
reloads = int(os.environ["RELOADS"])
def connect():
    c = http.client.HTTPConnection("zdd.test", 443, timeout=10)
    c.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 443), 10), server_hostname="zdd.test")
    return c
stop = threading.Event()
def reload_loop():
    for _ in range(reloads):
        time.sleep(2)
        subprocess.run(["systemctl", "reload", "nginx.service"], check=True)
    time.sleep(2)
    stop.set()
t = threading.Thread(target=reload_loop)
t.start()
sent = dropped = failed = connections = 0
conn, reused = None, False
while not stop.is_set() and sent < 5000:
    sent += 1
    for attempt in (1, 2):
        try:
            if conn is None:
                conn, reused = connect(), False
                connections += 1
            conn.request("GET", "/api/status", headers={"Host": "zdd.test"})
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                failed += 1
            reused = True
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
            break
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = None
            if reused and attempt == 1:
                dropped += 1  # closed under a reused connection: resent once
                continue
            failed += 1
            break
    time.sleep(0.01)
t.join()
print("reloads %d sent %d connections %d dropped-on-reuse %d (resent) failed %d" % (reloads, sent, connections, dropped, failed))
EOF
set_server_conf HTTPS=none TLS_CERTIFICATE= TLS_KEY=
dpkg-reconfigure -f noninteractive myapp-zdd >/dev/null
rm -rf "$tls" "$work"
