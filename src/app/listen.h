/* Listening sockets: inherited from systemd, or bound from --listen. */
#ifndef MYAPP_LISTEN_H
#define MYAPP_LISTEN_H

#include <stddef.h>

/* Fills fds with every inherited listening stream socket (sd_listen_fds);
 * returns how many (0 when none were passed) or a negative errno. */
int listen_inherited(int *fds, size_t max);

/* Binds and listens on addr: "HOST:PORT", "[V6]:PORT" or an absolute path
 * of a UNIX socket. Returns the fd or a negative errno. */
int listen_bind(const char *addr);

#endif
