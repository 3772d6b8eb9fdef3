/* What is sent: the GET/POST mix, acknowledged writes, and their read-back. */
#ifndef ZDD_LOAD_REQUESTS_H
#define ZDD_LOAD_REQUESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_response.h"

#define PATH_MAX_LEN 256
#define HOST_MAX_LEN 255

struct ack {
	uint64_t seq; /* the POST that wrote it: its text is "zdd-load <seq>" */
	int64_t id;   /* what the server answered */
};

struct mix {
	const char *host;
	const char *get_path;
	const char *post_path;
	double post_ratio;
	/* filled in by the run */
	struct ack *acks;
	size_t acks_len, acks_cap;
	uint64_t posts_2xx_without_id; /* a 2xx to a POST we cannot read back */
	int alloc_error;
};

struct verify {
	const struct mix *mix;
	uint64_t verified;
	uint64_t lost_404;      /* 404/410: the acknowledged note is gone */
	uint64_t lost_mismatch; /* 200 with another text */
	uint64_t errors;        /* could not tell (transport error, 5xx, ...) */
};

bool mix_is_post(const struct mix *m, uint64_t seq);
/* engine callbacks for the load run */
int mix_build(void *ctx, uint64_t seq, bool keepalive, char *buf, size_t cap);
void mix_on_response(void *ctx, uint64_t seq, const struct http_response *resp);
/* engine callbacks for the read-back: request `i` reads acks[i] */
int verify_build(void *ctx, uint64_t i, bool keepalive, char *buf, size_t cap);
void verify_on_response(
    void *ctx, uint64_t i, const struct http_response *resp);
/* Parses {"id":N} (json-c); 0 or -EBADMSG. Exposed for tests. */
int parse_ack_id(const char *body, int64_t *id);
/* 1 if body is a JSON object whose "text" is `want`, 0 if not. */
int note_text_matches(const char *body, const char *want);
/* A path we accept on the command line: starts with '/', printable, short. */
bool valid_path(const char *path);
bool valid_host(const char *host);

#endif
