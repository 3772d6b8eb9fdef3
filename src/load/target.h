/* Where the load goes: a UNIX socket path or a loopback TCP address. */
#ifndef ZDD_LOAD_TARGET_H
#define ZDD_LOAD_TARGET_H

#include <stdbool.h>
#include <sys/socket.h>

struct target {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int family;
	char name[160]; /* for reports: "unix:/run/myapp.sock", "tcp:127.0.0.1:80" */
};

int target_unix(struct target *t, const char *path);
/* HOST:PORT or [V6]:PORT, numeric or a name that resolves locally. Refuses
 * anything outside 127.0.0.0/8 and ::1 unless allow_nonloopback. */
int target_tcp(struct target *t, const char *hostport, bool allow_nonloopback);
bool target_is_loopback(const struct sockaddr *sa);
/* Starts a non-blocking connect. Returns the fd (>= 0) with *in_progress set
 * when the result comes later (EPOLLOUT), or a negative errno. */
int target_connect(const struct target *t, bool *in_progress);

#endif
