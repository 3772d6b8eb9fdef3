#!/bin/sh
# Experiment (docs/benchmark.md, "The guide's Express app"): are the 502s
# (nginx) and resends (socket) of the Express handover rows Node closing
# its idle keep-alive connections the moment SIGTERM comes? The same
# series with a copy of examples/node-express that lingers 1 s first (as
# the C app does: longer than nginx's 500 ms upstream keepalive_timeout;
# answers in it carry Connection: close). Run as root from the source tree
# inside the testbed where the package is installed; stdout is inside's
# (the results tar between its marker lines):
#   tests/machines/testbed/testbed exec bookworm --src . --deb build/myapp-zdd_*_amd64.deb \
#       -- sh tests/bench/experiments/express-linger.sh >linger.txt
set -eu
copy=$(mktemp -d /var/tmp/express-linger.XXXXXX)
cp -a examples/node-express/. "$copy/"
sed -i 's/^  if (server.closeIdleConnections) server.closeIdleConnections();$/  setTimeout(() => server.closeIdleConnections \&\& server.closeIdleConnections(), 1000);/' "$copy/server.js"
grep -q 'setTimeout(() => server.closeIdleConnections' "$copy/server.js"
EXPRESS_SRC=$copy WAYS="${WAYS:-express-zdd-nginx express-zdd-socket}" DRILLS=no RATES=500 exec sh tests/bench/inside
