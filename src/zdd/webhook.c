/*
 * Deploy notifications: DEPLOY_WEBHOOK, when set, is POSTed the history
 * line of every deploy, rollback and restart (the line deploys.jsonl
 * gets), after the deploy ended and its lock was released. It never
 * changes the deploy's outcome, and delays the push by at most
 * DEPLOY_WEBHOOK_TIMEOUT seconds. The URL may hold a token: it is never
 * printed.
 */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "zdd.h"

static size_t
discard(char *data, size_t size, size_t n, void *user)
{
	(void)data;
	(void)user;
	return size * n;
}

void
webhook_send(const struct zdd_config *cfg, const struct deploy_record *rec)
{
	struct curl_slist *headers = NULL;
	double t0 = clock_seconds();
	char *line = NULL, err[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURL *c = NULL;
	CURLcode rc;

	if (cfg->deploy_webhook[0] == '\0')
		return;
	if (history_format(rec, &line) < 0 ||
	    (headers = curl_slist_append(
		 NULL, "Content-Type: application/json")) == NULL ||
	    (c = curl_easy_init()) == NULL) {
		log_warn("webhook: not sent (out of memory)");
		goto out;
	}
	if (curl_easy_setopt(c, CURLOPT_URL, cfg->deploy_webhook) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") !=
		CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
		(long)cfg->deploy_webhook_timeout * 1000L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_USERAGENT, "myapp-zdd/" ZDD_VERSION) !=
		CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_POSTFIELDS, line) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard) != CURLE_OK) {
		log_warn("webhook: not sent (libcurl refused an option)");
		goto out;
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK)
		log_warn("webhook: not delivered (%s) after %.1f s; the %s is "
			 "not affected",
		    err[0] ? err : curl_easy_strerror(rc), clock_seconds() - t0,
		    rec->action);
	else if (status < 200 || status > 299)
		log_warn("webhook: answered HTTP %ld in %.1f s; the %s is not "
			 "affected",
		    status, clock_seconds() - t0, rec->action);
	else
		log_info("webhook: delivered (HTTP %ld, %.1f s)", status,
		    clock_seconds() - t0);
out:
	curl_easy_cleanup(c);
	curl_slist_free_all(headers);
	free(line);
}
