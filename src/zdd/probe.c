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

static bool
ok_code(long code)
{
	return code >= 200 && code < 300;
}

/*
 * A check declared in app.json (Dokku's semantics: initialDelay, then up
 * to attempts tries of timeout seconds each, wait seconds apart; 2xx is
 * healthy), else HEALTH_PATH until total_s.  lenient (an app that did not
 * declare a check and has no READY=1 to go by): when HEALTH_PATH answers
 * 404, GET / answering 2xx or 3xx is taken instead, and note says what to
 * declare.
 */
int
probe_check(const struct probe_request *rq, char *note, size_t notelen,
    char *why, size_t whylen)
{
	const struct health_check *h = rq->check;
	const char *socket_path = rq->socket_path;
	const char *path = h->declared ? h->path : rq->default_path;
	unsigned attempts = h->declared ? h->attempts : 0;
	long attempt_ms = h->declared && h->timeout_s ? h->timeout_s * 1000L
						      : ATTEMPT_TIMEOUT_MS;
	double wait =
	    h->declared && h->wait_s ? h->wait_s : RETRY_PAUSE_MS / 1000.0;
	double deadline;
	long code = 0, root_code = 0;
	unsigned tries = 0;
	int rc = -ECONNREFUSED;

	note[0] = '\0';
	if (h->declared && h->initial_delay_s)
		clock_sleep(h->initial_delay_s);
	deadline = clock_seconds() + rq->total_s;
	for (;;) {
		double left_ms = (deadline - clock_seconds()) * 1000;
		long ms = attempt_ms;

		if (attempts == 0 && left_ms < (double)ms)
			ms = left_ms < 100 ? 100 : (long)left_ms;
		rc = probe_get(socket_path, path, ms, &code);
		tries++;
		if (rc == 0 && ok_code(code))
			return 0;
		if (rc == 0 && code == 404 && rq->lenient &&
		    probe_get(socket_path, "/", ms, &root_code) == 0 &&
		    root_code >= 200 && root_code < 400) {
			snprintf(note, notelen,
			    "no health check declared and GET %s answered 404; "
			    "GET / answered %ld, taken as healthy: declare "
			    "one in app.json (healthchecks.web[].path)",
			    path, root_code);
			return 0;
		}
		if (zdd_interrupted || (attempts > 0 && tries >= attempts) ||
		    (attempts == 0 && clock_seconds() >= deadline))
			break;
		if (rq->alive != NULL && !rq->alive(rq->ctx, why, whylen))
			return -ESRCH;
		clock_sleep(wait);
	}
	if (rc == 0)
		snprintf(why, whylen,
		    "GET %s via %s answered %ld, not 2xx (%u %s)", path,
		    socket_path, code, tries, tries == 1 ? "try" : "tries");
	else
		snprintf(why, whylen, "GET %s via %s: no answer (%u %s)", path,
		    socket_path, tries, tries == 1 ? "try" : "tries");
	return -EIO;
}
