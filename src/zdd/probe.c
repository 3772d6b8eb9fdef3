/*
 * Health probe: GET HEALTH_PATH over one instance's private UNIX probe
 * socket (libcurl, CURLOPT_UNIX_SOCKET_PATH).  The public socket would
 * reach whichever instance the kernel picks; the probe socket reaches
 * exactly one.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "zdd.h"

#define ATTEMPT_TIMEOUT_MS 2000
#define RETRY_PAUSE_MS 250
#define BODY_MAX 4096

int
probe_socket_path(
    const struct zdd_config *cfg, const char *id, char *out, size_t n)
{
	int len;

	if (id != NULL)
		len = snprintf(out, n, "%s/%s-probe-%s.sock",
		    cfg->probe_socket_dir, cfg->app, id);
	else
		len = snprintf(out, n, "%s/%s-probe.sock",
		    cfg->probe_socket_dir, cfg->app);
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

static size_t
discard_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	size_t *seen = userdata;

	(void)data;
	*seen += size * nmemb;
	return *seen > BODY_MAX ? 0 : size * nmemb; /* bound what we read */
}

/* One attempt.  0 and *code set on an HTTP answer; negative otherwise. */
int
probe_get(
    const char *socket_path, const char *path, long timeout_ms, long *code)
{
	char url[ZDD_REF_MAX + 32];
	size_t seen = 0;
	CURLcode cc;
	CURL *c;

	*code = 0;
	c = curl_easy_init();
	if (c == NULL)
		return -ENOMEM;
	snprintf(url, sizeof(url), "http://localhost%s", path);
	if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path) !=
		CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROXY, "") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_USERAGENT, "myapp-zdd/" ZDD_VERSION) !=
		CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body) !=
		CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, &seen) != CURLE_OK) {
		curl_easy_cleanup(c);
		return -EINVAL;
	}
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK || cc == CURLE_WRITE_ERROR)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
	curl_easy_cleanup(c);
	if (*code > 0)
		return 0;
	return cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
}

/* Retry until 200 or HEALTH_TIMEOUT; why says what the last try saw. */
int
probe_wait_healthy(const char *socket_path, const char *path,
    unsigned timeout_s, char *why, size_t whylen)
{
	double deadline = clock_seconds() + timeout_s;
	struct timespec pause = { 0, RETRY_PAUSE_MS * 1000000L };
	long code = 0;
	int rc;

	for (;;) {
		double left_ms = (deadline - clock_seconds()) * 1000;

		rc = probe_get(socket_path, path,
		    left_ms < ATTEMPT_TIMEOUT_MS
			? (left_ms < 100 ? 100 : (long)left_ms)
			: ATTEMPT_TIMEOUT_MS,
		    &code);
		if (rc == 0 && code == 200)
			return 0;
		if (clock_seconds() >= deadline || zdd_interrupted)
			break;
		nanosleep(&pause, NULL);
	}
	if (rc == 0)
		snprintf(why, whylen,
		    "GET %s via %s answered %ld, not 200 "
		    "(for %u s)",
		    path, socket_path, code, timeout_s);
	else
		snprintf(why, whylen, "GET %s via %s: no answer within %u s",
		    path, socket_path, timeout_s);
	return -EIO;
}
