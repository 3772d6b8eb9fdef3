/* The libmicrohttpd mode in server.c, proven on one listening socket that
 * outlives many servers: start, serve, drain (quiesce), stop, again and
 * again. The socket must keep listening throughout, connections queued
 * while no server runs must be served by the next one, an in-flight
 * request must complete with Connection: close, and idle keep-alive
 * connections must not hold the drain up.
 *   QUIESCE_ROUNDS=N (default 300) */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "http_client.h"
#include "notes.h"
#include "routes.h"
#include "server.h"
#include "tap.h"

static struct app_state app;
static struct identity id = { "quiesce-test", "rev" };

static int still_listening(int fd)
{
	int val = 0;
	socklen_t len = sizeof(val);

	return fcntl(fd, F_GETFD) >= 0 && getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &len) == 0 && val == 1;
}

static int bind_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (strlen(path) >= sizeof(sun.sun_path))
		return -1;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 128) < 0)
		return -1;
	return fd;
}

/* Request with a body sent in two halves, the drain starting in between. */
static void test_inflight(int fd, const char *path)
{
	static const char head[] = "POST /api/notes HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
				   "Content-Length: 20\r\n\r\n{\"text\":\"in";
	static const char tail[] = "-flight\"}";
	struct http_result res;
	struct server *srv = NULL;
	int c, drained;

	atomic_store(&app.draining, 0);
	ok(server_start(&srv, &app, &fd, 1, 2) == 0, "server starts for the in-flight test");
	c = http_connect_unix(path);
	http_write_all(c, head, strlen(head));
	usleep(100 * 1000);	/* the server has read the first half */
	server_begin_drain(srv);
	ok(server_requests_in_flight(srv) == 1, "one request in flight at the drain");
	ok(server_wait_drained(srv, monotonic_ms() + 200) == -ETIMEDOUT, "the drain waits for it");
	http_write_all(c, tail, strlen(tail));
	ok(http_read_response(c, &res) == 0 && res.status == 201, "in-flight POST completes: %d %s", res.status, res.body);
	ok(res.connection_close, "and is answered with Connection: close");
	close(c);
	drained = server_wait_drained(srv, monotonic_ms() + 5000);
	ok(drained == 0, "drained after it");
	server_stop(srv);
	ok(still_listening(fd), "socket still listening after the stop");
}

/* An idle keep-alive connection does not hold the drain; stop closes it. */
static void test_idle_keepalive(int fd, const char *path)
{
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
	struct http_result res;
	struct server *srv = NULL;
	int64_t t0;
	char byte;
	int c;

	atomic_store(&app.draining, 0);
	ok(server_start(&srv, &app, &fd, 1, 2) == 0, "server starts for the keep-alive test");
	c = http_connect_unix(path);
	http_write_all(c, req, strlen(req));
	ok(http_read_response(c, &res) == 0 && res.status == 200 && !res.connection_close, "keep-alive answer");
	t0 = monotonic_ms();
	server_begin_drain(srv);
	ok(server_wait_drained(srv, t0 + 5000) == 0 && monotonic_ms() - t0 < 500,
	   "idle keep-alive connection does not hold the drain (%lld ms)", (long long)(monotonic_ms() - t0));
	server_stop(srv);
	ok(read(c, &byte, 1) == 0, "stop closed the idle connection");
	close(c);
	ok(still_listening(fd), "socket still listening");
}

int main(void)
{
	char dir[] = "/tmp/myapp-quiesce-XXXXXX";
	char path[128], cmd[160];
	const char *env = getenv("QUIESCE_ROUNDS");
	int rounds = env ? atoi(env) : 300;
	int served = 0, listening = 0, queued_served = 0, starts = 0, drains = 0;
	struct notes *notes = NULL;
	int fd, pending = -1;

	if (!mkdtemp(dir) || notes_open(&notes, dir) < 0) {
		printf("Bail out! cannot set up\n");
		return 1;
	}
	app_state_init(&app, &id, notes, BODY_MAX_DEFAULT);
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	fd = bind_unix(path);
	ok(fd >= 0, "listening socket");

	test_inflight(fd, path);
	test_idle_keepalive(fd, path);

	for (int i = 0; i < rounds; i++) {
		struct server *srv = NULL;
		struct http_result res;

		atomic_store(&app.draining, 0);
		if (server_start(&srv, &app, &fd, 1, 2) < 0)
			break;
		starts++;
		/* The connection queued while no server ran is served now. */
		if (pending >= 0) {
			static const char req[] = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
			if (http_write_all(pending, req, strlen(req)) == 0 && http_read_response(pending, &res) == 0 &&
			    res.status == 200)
				queued_served++;
			close(pending);
		}
		if (http_do(path, "GET", "/healthz", NULL, NULL, &res) == 0 && res.status == 200)
			served++;
		server_begin_drain(srv);
		pending = http_connect_unix(path);	/* lands in the backlog */
		if (server_wait_drained(srv, monotonic_ms() + 5000) == 0)
			drains++;
		server_stop(srv);
		if (still_listening(fd))
			listening++;
	}
	if (pending >= 0)
		close(pending);
	ok(starts == rounds, "%d/%d starts on the same socket", starts, rounds);
	ok(served == rounds, "%d/%d rounds served a request", served, rounds);
	ok(drains == rounds, "%d/%d drains completed", drains, rounds);
	ok(listening == rounds, "%d/%d stops left the socket listening", listening, rounds);
	ok(queued_served == rounds - 1, "%d/%d connections queued during a stop were served by the next start",
	   queued_served, rounds - 1);

	close(fd);
	notes_close(notes);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", dir);
	return tap_done();
}
