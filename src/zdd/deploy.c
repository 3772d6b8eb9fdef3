/*
 * The handover: deploy, rollback and restart all go through it.
 *
 *   lock -> [checkout -> spec -> build] -> start <APP>@<id> beside the
 *   live one -> health via its own probe socket -> swap previous, current
 *   -> restart <APP>.service (the side instance keeps serving)
 *   -> health of main -> stop the side instance -> restart the workers
 *   (workers.c: the old generation stops before the new one starts)
 *   -> [prune] -> history
 *
 * A release that does not send READY=1 (readiness "health", app_spec.c)
 * and may serve only fd 3 is started with a twin, <APP>-twin@<id>, whose
 * only socket is the side instance's probe socket: the twin's health
 * stands for the release's; the side instance and then main are given the
 * time the twin took (and must still be running after it) instead of a
 * probe of their own.  docs/architecture.md says why and what it costs.
 *
 * Before the swap every failure leaves the live release untouched.  After
 * it, a failure swaps back and restarts main on the old release; if even
 * that fails the side instance is left running so something still serves.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdd.h"

#define STOP_TIMEOUT_S 120 /* TimeoutStopSec=30 in the units, plus margin */
#define RESTART_EXTRA_S 60 /* restart = stop (drain) + start (ready) */
#define JOURNAL_LINES 20

volatile sig_atomic_t zdd_interrupted;

enum action { ACT_DEPLOY, ACT_ROLLBACK, ACT_RESTART };

/* What the failure path undoes (see fail()). */
enum undo {
	UNDO_NOTHING = 0,
	UNDO_SIDE = 1 << 0,    /* stop the side instance, forget its failure */
	UNDO_RELEASE = 1 << 1, /* remove the release this run created */
	UNDO_ALL = UNDO_SIDE | UNDO_RELEASE,
};

struct run {
	const struct zdd_config *cfg;
	const struct deploy_request *rq; /* deploy only */
	enum action action;
	struct deploy_record rec;
	int lock_fd;
	bool new_release; /* created by this run: removed on failure */
	bool swapped;
	bool show_journal; /* the side instance's journal tells why */
	unsigned pruned;
	double t0;
	char id[ZDD_ID_MAX];
	char sha[ZDD_SHA_MAX + 1];
	struct links old; /* as found: restored on failure */
	char main_unit[ZDD_NAME_MAX + 16];
	char side_unit[ZDD_NAME_MAX + ZDD_ID_MAX + 16];
	char side_probe_unit[ZDD_NAME_MAX + ZDD_ID_MAX + 24];
	char side_socket[ZDD_PATH_MAX + 96];
	char twin_unit[ZDD_NAME_MAX + ZDD_ID_MAX + 24]; /* health readiness */
	char failed_unit[ZDD_NAME_MAX + 24]; /* a web process k that failed */
	struct app_spec spec; /* of the release being handed over to */
	double healthy_s;     /* how long the new release took to be healthy */
	struct worker_results workers;
	bool workers_failed; /* the release is live, a worker is not */
	bool cron_failed;    /* the release is live, its timers are not set */
	char reason[1024];
	char final[1536];
};

typedef int step_fn(struct run *r);

static const char *const action_names[] = { "deploy", "rollback", "restart" };

static void
run_init(struct run *r, const struct zdd_config *cfg, enum action action,
    const char *user)
{
	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	r->action = action;
	r->lock_fd = -1;
	r->t0 = clock_seconds();
	r->rec.action = action_names[action];
	r->rec.user = user;
	clock_gettime(CLOCK_REALTIME, &r->rec.started);
	unit_name(cfg, "main", NULL, r->main_unit, sizeof(r->main_unit));
}

/*
 * Every step of a run: timed, one dashboard line, recorded for the
 * history.  fn says why it failed in r->reason.
 */
static int
step(struct run *r, const char *name, step_fn *fn)
{
	double t0 = clock_seconds(), s;
	int rc;

	rc = fn(r);
	s = clock_seconds() - t0;
	log_step(name, rc == 0 ? "ok" : "FAILED", s);
	if (r->rec.nsteps < ZDD_STEPS_MAX) {
		r->rec.steps[r->rec.nsteps].name = name;
		r->rec.steps[r->rec.nsteps].seconds = s;
		r->rec.nsteps++;
	}
	if (rc != 0 && r->rec.failed_step == NULL)
		r->rec.failed_step = name;
	return rc;
}

static bool
interrupted(struct run *r, const char *name)
{
	if (!zdd_interrupted)
		return false;
	snprintf(r->reason, sizeof(r->reason), "interrupted");
	if (r->rec.failed_step == NULL)
		r->rec.failed_step = name;
	return true;
}

static const char *
live_text(const char *id)
{
	return id[0] ? id : "no release";
}

/* "<id> still serving", or what to say when nothing was live. */
static void
set_still_serving(struct run *r)
{
	if (r->old.current[0])
		snprintf(r->final, sizeof(r->final), "%s still serving",
		    r->old.current);
	else
		snprintf(r->final, sizeof(r->final),
		    "nothing was live "
		    "before, nothing changed");
}

/* History line, final dashboard line, unlock. */
static int
finish(struct run *r, int code)
{
	static const char *const results[] = {
		[ZDD_EXIT_OK] = "ok",
		[ZDD_EXIT_FAILED] = "failed",
		[ZDD_EXIT_USAGE] = "failed",
		[ZDD_EXIT_LOCK] = "failed",
		[ZDD_EXIT_ROLLED_BACK] = "rolled-back",
		[ZDD_EXIT_BROKEN] = "broken",
	};
	double total = clock_seconds() - r->t0;

	clock_gettime(CLOCK_REALTIME, &r->rec.finished);
	r->rec.result = results[code];
	r->rec.id = r->id[0] ? r->id : NULL;
	r->rec.revision = r->sha[0] ? r->sha : NULL;
	r->rec.reason = code == ZDD_EXIT_OK ? NULL : r->reason;
	if (r->lock_fd >= 0)
		history_append(r->cfg->app_root, &r->rec);
	if (code == ZDD_EXIT_OK) {
		static const char *const done[] = { "deployed",
			"rolled back to", "restarted" };

		log_info("%s %s in %.1f s%s%s", done[r->action], r->id, total,
		    r->workers_failed ? " (a worker did not start: above)" : "",
		    r->cron_failed ? " (scheduled jobs not updated: above)"
				   : "");
	} else {
		log_info("%s failed at %s: %s; %s", action_names[r->action],
		    r->rec.failed_step ? r->rec.failed_step : "start",
		    r->reason, r->final);
	}
	/* recorded: the notification, after the lock (it may take its
	 * timeout, and the next deploy need not wait for it) */
	lock_release(r->lock_fd);
	if (r->lock_fd >= 0)
		webhook_send(r->cfg, &r->rec);
	r->lock_fd = -1;
	return code;
}

/* systemctl VERB UNIT1 [UNIT2]; a failure is said here, once. */
static int
systemctl(const struct run *r, unsigned timeout_s, const char *verb,
    const char *unit1, const char *unit2)
{
	char why[ZDD_WHY_MAX];
	int rc;

	rc = units_run(r->cfg, timeout_s, verb, unit1, unit2, why, sizeof(why));
	if (rc < 0)
		log_err("%s", why);
	return rc;
}

/* The side instance drains its in-flight requests and exits. */
static int
stop_side(struct run *r)
{
	return systemctl(
	    r, STOP_TIMEOUT_S, "stop", r->side_unit, r->side_probe_unit);
}

static int
stop_twin(struct run *r)
{
	int rc = systemctl(r, STOP_TIMEOUT_S, "stop", r->twin_unit, NULL);

	units_reset_failed(r->cfg, r->twin_unit, NULL);
	return rc;
}

/*
 * The one way a run ends on failure: stop the side instance (when there is
 * one: its journal first if it tells why), remove the release this run
 * created and say so, then the history and the final line (r->final, by
 * default what still serves).  Returns code.
 */
static int
fail(struct run *r, int code, enum undo undo)
{
	if ((undo & UNDO_SIDE) && r->side_unit[0] != '\0') {
		stop_side(r);
		if (r->twin_unit[0] != '\0')
			stop_twin(r);
		if (r->show_journal)
			logs_tail(r->cfg, r->side_unit, JOURNAL_LINES);
		/* The refused release was reported above: leave no "failed"
		 * unit behind for `systemctl --failed` and monitoring to trip
		 * over. */
		units_reset_failed(r->cfg, r->side_unit, r->side_probe_unit);
	}
	if ((undo & UNDO_RELEASE) && r->new_release &&
	    release_remove(r->cfg->app_root, r->id) == 0)
		log_info("       removed release %s", r->id);
	if (r->final[0] == '\0')
		set_still_serving(r);
	return finish(r, code);
}

static int
lock_step(struct run *r)
{
	char why[ZDD_WHY_MAX];
	int rc;

	rc = lock_acquire(r->cfg->app_root, r->cfg->lock_timeout, &r->lock_fd,
	    why, sizeof(why));
	if (rc < 0 && why[0] != '\0')
		log_err("%s", why);
	if (rc < 0)
		snprintf(r->reason, sizeof(r->reason),
		    rc == -ETIMEDOUT       ? "another deploy holds the lock"
			: rc == -ECANCELED ? "interrupted"
					   : "cannot take the deploy lock");
	return rc;
}

static int
take_lock(struct run *r)
{
	int rc;

	rc = step(r, "lock", lock_step);
	if (rc == 0)
		return 0;
	snprintf(r->final, sizeof(r->final), "nothing changed");
	return fail(r, rc == -ETIMEDOUT ? ZDD_EXIT_LOCK : ZDD_EXIT_FAILED,
	    UNDO_NOTHING);
}

static int
read_links(struct run *r)
{
	char why[ZDD_WHY_MAX];
	int rc;

	rc = links_read(r->cfg->app_root, &r->old, why, sizeof(why));
	if (rc < 0)
		log_err("%s", why);
	return rc;
}

/* Refs, revision, id, then the tree into releases/<id>. */
static int
checkout_step(struct run *r)
{
	const struct zdd_config *cfg = r->cfg;
	const struct deploy_request *rq = r->rq;
	char why[ZDD_WHY_MAX] = "";
	int rc;

	rc = read_links(r);
	/* A moved branch is the reason itself, said in the final line. */
	if (rc == 0 && rq->expect_old != NULL)
		rc = branch_check_unmoved(
		    cfg, rq->expect_old, r->reason, sizeof(r->reason));
	if (rc == 0)
		rc = release_resolve(
		    cfg, rq->rev, r->sha, sizeof(r->sha), why, sizeof(why));
	if (rc == 0)
		rc = release_id_pick(cfg->app_root, r->sha, r->id,
		    sizeof(r->id), why, sizeof(why));
	if (rc == 0 && !interrupted(r, "checkout"))
		rc = release_checkout(cfg, r->sha, r->id, why, sizeof(why));
	else if (rc == 0)
		rc = -ECANCELED;
	if (why[0] != '\0')
		log_err("%s", why);
	if (rc < 0 && r->reason[0] == '\0')
		snprintf(r->reason, sizeof(r->reason), "cannot check out %s",
		    rq->rev ? rq->rev : cfg->branch);
	return rc;
}

/* "exposure 1.0 OK (systemd-analyze security myapp.service)" */
static int
unit_exposure_line(const struct run *r, char *out, size_t n)
{
	char level[64];

	if (profile_exposure(r->cfg, r->main_unit, level, sizeof(level)) < 0)
		return -EIO;
	snprintf(out, n, "exposure: %s (systemd-analyze security %s)", level,
	    r->main_unit);
	return 0;
}

/*
 * What the release declares (Procfile, app.json), checked against what the
 * admin grants; one line each for what runs and how it is judged ready.
 */
static int
load_spec(struct run *r)
{
	char dir[ZDD_RELEASE_PATH_MAX], line[512], why[ZDD_WHY_MAX];
	int rc;

	if (release_path(r->cfg->app_root, r->id, NULL, dir, sizeof(dir)) < 0) {
		snprintf(r->reason, sizeof(r->reason), "release path too long");
		return -ENAMETOOLONG;
	}
	rc = app_spec_load(dir, &r->spec, r->reason, sizeof(r->reason));
	if (rc < 0)
		return rc;
	rc = profile_check(r->cfg, r->spec.json.needs, line, sizeof(line),
	    r->reason, sizeof(r->reason));
	if (rc < 0)
		return rc;
	if (r->spec.web != NULL)
		log_info("       process: web: %s (Procfile)", r->spec.web);
	else
		log_info("       process: web: ./start (no Procfile web:)");
	if (app_spec_web_quantity(&r->spec) > 1)
		log_info("       web processes: %u (app.json formation)",
		    app_spec_web_quantity(&r->spec));
	for (size_t i = 0; r->spec.has_procfile && i < r->spec.procfile.n; i++)
		if (worker_type(r->spec.procfile.procs[i].type))
			log_info("       process: %s: %s (worker)",
			    r->spec.procfile.procs[i].type,
			    r->spec.procfile.procs[i].command);
	log_info("       profile: %s", line);
	if (unit_exposure_line(r, why, sizeof(why)) == 0)
		log_info("       %s", why);
	log_info("       readiness: %s (%s)", readiness_name(r->spec.readiness),
	    r->spec.readiness_why);
	return 0;
}

static int
spec_step(struct run *r)
{
	return load_spec(r);
}

static int
build_step(struct run *r)
{
	const struct deploy_request *rq = r->rq;
	char dir[ZDD_RELEASE_PATH_MAX];
	struct build_plan plan;
	const char *given = NULL, *given_why = "";
	int rc;

	if (rq->build_command != NULL) {
		given = rq->build_command;
		given_why = "deploy --build-command";
	} else if (r->spec.json.build[0] != '\0') {
		given = r->spec.json.build;
		given_why = "app.json myapp-zdd.build";
	} else if (r->cfg->build_command[0] != '\0') {
		given = r->cfg->build_command;
		given_why = "the BUILD_COMMAND setting";
	}
	if (release_path(r->cfg->app_root, r->id, NULL, dir, sizeof(dir)) < 0) {
		snprintf(r->reason, sizeof(r->reason), "release path too long");
		return -ENAMETOOLONG;
	}
	rc = builder_plan(
	    dir, given, given_why, &plan, r->reason, sizeof(r->reason));
	if (rc < 0)
		return rc;
	log_info("       builder: %s (%s)", plan.name, plan.why);
	if (plan.command[0] != '\0') {
		if (strcmp(plan.name, "command") != 0)
			log_info("       running: %s", plan.command);
		rc = build_run(
		    r->cfg, r->id, plan.command, r->reason, sizeof(r->reason));
	}
	if (rc == 0)
		rc = app_spec_check_runnable(
		    dir, &r->spec, r->reason, sizeof(r->reason));
	return rc;
}

/* The Procfile's release: command; NULL when it declares none. */
static const char *
release_command(const struct run *r)
{
	return r->spec.has_procfile
	    ? procfile_command(&r->spec.procfile, "release")
	    : NULL;
}

/* That command with the app's rights, once, before the release starts;
 * a failure refuses the deploy (nothing live changed). */
static int
release_step(struct run *r)
{
	const char *command = release_command(r);
	int rc;

	log_info("       release command: %s", command);
	r->rec.release_command = command;
	rc = release_command_run(
	    r->cfg, r->id, command, r->reason, sizeof(r->reason));
	r->rec.release_command_result = rc == 0 ? "ok" : "failed";
	return rc;
}

static bool
health_mode(const struct run *r)
{
	return r->spec.readiness == ZDD_READY_HEALTH;
}

/* With health readiness the twin starts with the side instance. */
static int
start_side(struct run *r)
{
	int rc;

	rc = systemctl(r, r->cfg->ready_timeout, "start", r->side_unit,
	    health_mode(r) ? r->twin_unit : NULL);
	if (rc == -ETIMEDOUT)
		snprintf(r->reason, sizeof(r->reason),
		    "%s did not become "
		    "ready within %u s (READY_TIMEOUT); journal above",
		    r->side_unit, r->cfg->ready_timeout);
	else if (rc < 0)
		snprintf(r->reason, sizeof(r->reason),
		    "%s failed to start; "
		    "journal above",
		    r->side_unit);
	r->show_journal = rc < 0;
	return rc;
}

/*
 * Health readiness: how long an instance of this release is given before
 * it is trusted to serve (the twin's time to health, at least a second,
 * and the app.json uptime), and then it must still be running.
 */
static double
settle_seconds(const struct run *r)
{
	double s = r->healthy_s + 0.5;

	if (s < 1.0)
		s = 1.0;
	if (r->spec.json.health.uptime_s > s)
		s = r->spec.json.health.uptime_s;
	return s;
}

static int
still_running(const struct run *r, const char *unit,
    const struct unit_state *was, char *reason, size_t reasonlen)
{
	struct unit_state now;
	char why[ZDD_WHY_MAX];

	if (units_state(r->cfg, unit, &now, why, sizeof(why)) < 0) {
		log_err("%s", why);
		snprintf(
		    reason, reasonlen, "cannot read the state of %s", unit);
		return -EIO;
	}
	if (strcmp(now.active, "active") != 0 ||
	    (was != NULL &&
		(now.main_pid != was->main_pid ||
		    now.restarts != was->restarts))) {
		snprintf(reason, reasonlen,
		    "%s did not stay up (%s, %s); journal above", unit,
		    now.active,
		    was && now.main_pid != was->main_pid ? "restarted"
							 : "stopped");
		return -EIO;
	}
	return 0;
}

/* Between health attempts: a twin that exited will not answer. */
static bool
twin_alive(const void *ctx, char *why, size_t whylen)
{
	const struct run *r = ctx;

	return still_running(r, r->twin_unit, NULL, why, whylen) == 0;
}

static int
side_healthy(struct run *r)
{
	const struct health_check *h = &r->spec.json.health;
	double t0 = clock_seconds();
	char note[512] = "";
	int rc = 0;

	if (h->declared && h->path[0] == '\0')
		clock_sleep(h->uptime_s); /* an uptime check only */
	else
		rc = probe_check(
		    &(struct probe_request){ .socket_path = r->side_socket,
			.check = h,
			.default_path = r->cfg->health_path,
			.total_s = r->cfg->health_timeout,
			.lenient = health_mode(r) && !h->declared,
			.alive = health_mode(r) ? twin_alive : NULL,
			.ctx = r },
		    note, sizeof(note), r->reason, sizeof(r->reason));
	if (rc == 0 && note[0] != '\0' && !(h->declared && !h->path[0]))
		log_info("       %s", note);
	if (rc == 0 && health_mode(r)) {
		/* the start step's time counts: side and twin started
		 * together */
		r->healthy_s = r->rec.nsteps > 0
		    ? r->rec.steps[r->rec.nsteps - 1].seconds +
			clock_seconds() - t0
		    : clock_seconds() - t0;
		rc = still_running(
		    r, r->twin_unit, NULL, r->reason, sizeof(r->reason));
		if (rc == 0) {
			stop_twin(r);
			clock_sleep(settle_seconds(r) - r->healthy_s);
			rc = still_running(r, r->side_unit, NULL, r->reason,
			    sizeof(r->reason));
		}
	}
	r->show_journal = rc < 0;
	return rc;
}

static int
swap_links(struct run *r)
{
	const char *root = r->cfg->app_root;
	char why[ZDD_WHY_MAX] = "";
	int rc = 0;

	if (r->old.current[0] && strcmp(r->old.current, r->id) != 0)
		rc = links_swap(
		    root, "previous", r->old.current, why, sizeof(why));
	if (rc == 0)
		rc = links_swap(root, "current", r->id, why, sizeof(why));
	if (rc < 0) {
		log_err("%s", why);
		snprintf(r->reason, sizeof(r->reason),
		    "cannot swap the current link");
		return rc;
	}
	r->swapped = true;
	return 0;
}

static int
restart_main_unit(const struct run *r)
{
	return systemctl(r, r->cfg->ready_timeout + RESTART_EXTRA_S, "restart",
	    r->main_unit, NULL);
}

static int
restart_main(struct run *r)
{
	int rc;

	rc = restart_main_unit(r);
	if (rc < 0)
		snprintf(r->reason, sizeof(r->reason),
		    "%s did not restart "
		    "on %s",
		    r->main_unit, r->id);
	return rc;
}

/* The health check through a live instance's probe socket (probe_id:
 * NULL for main's, "web-k" for web process k's). */
static int
instance_healthy(
    const struct run *r, const char *probe_id, char *why, size_t whylen)
{
	char sock[ZDD_PATH_MAX + 96], note[512];

	if (probe_socket_path(r->cfg, probe_id, sock, sizeof(sock)) < 0) {
		snprintf(why, whylen, "probe socket path too long");
		return -ENAMETOOLONG;
	}
	return probe_check(&(struct probe_request){ .socket_path = sock,
			       .check = &r->spec.json.health,
			       .default_path = r->cfg->health_path,
			       .total_s = r->cfg->health_timeout },
	    note, sizeof(note), why, whylen);
}

/* Health readiness: a live instance is given the settle time and must
 * stay up. */
static int
instance_settled(
    const struct run *r, const char *unit, char *reason, size_t reasonlen)
{
	struct unit_state was;
	char why[ZDD_WHY_MAX];

	if (units_state(r->cfg, unit, &was, why, sizeof(why)) < 0) {
		log_err("%s", why);
		snprintf(
		    reason, reasonlen, "cannot read the state of %s", unit);
		return -EIO;
	}
	clock_sleep(settle_seconds(r));
	return still_running(r, unit, &was, reason, reasonlen);
}

/* A live instance just (re)started on the release r->spec declares. */
static int
instance_ok(const struct run *r, const char *unit, const char *probe_id,
    char *why, size_t whylen)
{
	if (health_mode(r))
		return instance_settled(r, unit, why, whylen);
	return instance_healthy(r, probe_id, why, whylen);
}

static int
verify_main(struct run *r)
{
	return instance_ok(r, r->main_unit, NULL, r->reason, sizeof(r->reason));
}

/*
 * Web processes 2..N (app.json formation.web.quantity), one at a time
 * after main, each checked like main, while the side instance still
 * serves: main, the side and the others keep at least N ready. Then
 * those above N are stopped. Restores (quantity of the release now in
 * r->spec) go through here too.
 */
static int
restart_instances(struct run *r, char *why, size_t whylen)
{
	unsigned n = app_spec_web_quantity(&r->spec);

	for (unsigned k = 2; k <= n; k++) {
		struct web_instance_names w;

		if (web_instance_units(r->cfg, k, &w) < 0) {
			snprintf(why, whylen, "unit name too long (APP)");
			return -ENAMETOOLONG;
		}
		log_info("       web process %u of %u: %s", k, n, w.unit);
		snprintf(r->failed_unit, sizeof(r->failed_unit), "%s", w.unit);
		if (systemctl(r, r->cfg->ready_timeout + RESTART_EXTRA_S,
			"restart", w.unit, NULL) < 0) {
			snprintf(why, whylen, "%s did not restart", w.unit);
			return -EIO;
		}
		if (instance_ok(r, w.unit, w.probe_id, why, whylen) < 0)
			return -EIO;
	}
	r->failed_unit[0] = '\0';
	(void)web_instances_stop_above(r->cfg, n); /* said; not fatal */
	return 0;
}

static int
instances_step(struct run *r)
{
	return restart_instances(r, r->reason, sizeof(r->reason));
}

/* current and previous as the run found them. */
static int
restore_links(struct run *r)
{
	char why[ZDD_WHY_MAX];
	int rc;

	rc = links_restore(r->cfg->app_root, &r->old, why, sizeof(why));
	if (rc < 0)
		log_err("%s", why);
	return rc;
}

/* Main, and its web processes 2..N, back on the release that was live:
 * judged by that release's own declarations. */
static int
old_release_healthy(struct run *r, char *why, size_t whylen)
{
	char dir[ZDD_RELEASE_PATH_MAX];

	if (release_path(
		r->cfg->app_root, r->old.current, NULL, dir, sizeof(dir)) < 0 ||
	    app_spec_load(dir, &r->spec, why, whylen) < 0) {
		snprintf(why, whylen, "cannot read what %s declares",
		    r->old.current);
		return -EINVAL;
	}
	if (instance_ok(r, r->main_unit, NULL, why, whylen) < 0)
		return -EIO;
	return restart_instances(r, why, whylen);
}

/*
 * Main did not come up (or is unhealthy) on the new release.  The side
 * instance still serves the new release meanwhile.
 */
static int
fail_after_swap(struct run *r)
{
	char why[512];

	logs_tail(r->cfg, r->failed_unit[0] ? r->failed_unit : r->main_unit,
	    JOURNAL_LINES);
	if (!r->swapped) {
		/* restart: main failed on the release that was live. */
		snprintf(r->final, sizeof(r->final),
		    "%s left running to keep "
		    "serving %s; fix %s, then run 'myapp-zdd restart'",
		    r->side_unit, r->id, r->main_unit);
		return fail(r, ZDD_EXIT_BROKEN, UNDO_NOTHING);
	}
	log_info("-----> restoring %s", live_text(r->old.current));
	if (restore_links(r) < 0) {
		snprintf(r->final, sizeof(r->final),
		    "cannot restore the "
		    "current/previous links; %s left running to keep serving "
		    "%s",
		    r->side_unit, r->id);
		return fail(r, ZDD_EXIT_BROKEN, UNDO_NOTHING);
	}
	if (r->old.current[0] == '\0') {
		/* Nothing was live before: back to nothing. */
		snprintf(r->final, sizeof(r->final),
		    "links restored, nothing "
		    "was live before");
		return fail(r, ZDD_EXIT_ROLLED_BACK, UNDO_ALL);
	}
	if (restart_main_unit(r) < 0 ||
	    old_release_healthy(r, why, sizeof(why)) < 0) {
		snprintf(r->final, sizeof(r->final),
		    "%s did not come back on "
		    "%s either; %s left running to keep serving %s",
		    r->main_unit, r->old.current, r->side_unit, r->id);
		return fail(r, ZDD_EXIT_BROKEN, UNDO_NOTHING);
	}
	snprintf(r->final, sizeof(r->final), "rolled back, %s serving",
	    r->old.current);
	return fail(r, ZDD_EXIT_ROLLED_BACK, UNDO_ALL);
}

static const struct procfile *
release_procfile(const struct run *r)
{
	return r->spec.has_procfile ? &r->spec.procfile : NULL;
}

/* After the web release is live: its workers, one generation at a time. */
static int
workers_step(struct run *r)
{
	r->rec.workers = &r->workers;
	return workers_replace(
	    r->cfg, release_procfile(r), "restart", &r->workers);
}

/* Then its scheduled jobs' timers (cron_jobs.c). */
static int
cron_step(struct run *r)
{
	return cron_apply(r->cfg, &r->spec.json, r->reason, sizeof(r->reason));
}

/* Everything after the release exists on disk; returns an exit code
 * only on failure (finish() called), 0 when the caller should go on. */
static int
handover(struct run *r)
{
	const struct zdd_config *cfg = r->cfg;

	unit_name(cfg, "side", r->id, r->side_unit, sizeof(r->side_unit));
	unit_name(cfg, "side-probe", r->id, r->side_probe_unit,
	    sizeof(r->side_probe_unit));
	if (health_mode(r))
		unit_name(
		    cfg, "twin", r->id, r->twin_unit, sizeof(r->twin_unit));
	if (probe_socket_path(
		cfg, r->id, r->side_socket, sizeof(r->side_socket)) < 0) {
		snprintf(r->reason, sizeof(r->reason),
		    "probe socket path for "
		    "%s too long (PROBE_SOCKET_DIR)",
		    r->id);
		return fail(r, ZDD_EXIT_FAILED, UNDO_ALL);
	}
	if (interrupted(r, "start") || step(r, "start", start_side) < 0 ||
	    interrupted(r, "health") || step(r, "health", side_healthy) < 0 ||
	    interrupted(r, "swap"))
		return fail(r, ZDD_EXIT_FAILED, UNDO_ALL);

	/* From here on the run completes: interrupting it half-way would
	 * be worse than finishing (every step is time-bounded). */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);

	if (r->action != ACT_RESTART && step(r, "swap", swap_links) < 0) {
		restore_links(r);
		return fail(r, ZDD_EXIT_FAILED, UNDO_ALL);
	}
	if (step(r, "restart", restart_main) < 0 ||
	    step(r, "verify", verify_main) < 0)
		return fail_after_swap(r);
	if (app_spec_web_quantity(&r->spec) == 1)
		(void)web_instances_stop_above(cfg, 1); /* from an older one */
	else if (step(r, "instances", instances_step) < 0)
		return fail_after_swap(r);
	if (step(r, "drain", stop_side) < 0)
		log_warn("%s did not stop cleanly; the new release is live "
			 "anyway",
		    r->side_unit);
	/* One left running by an earlier failed restore (exit 5) would serve
	 * an old release forever, and outlive its directory when pruned. */
	units_side_instances(cfg, true);
	if (workers_declared(release_procfile(r)) == 0)
		(void)workers_step(r); /* only stops those no longer declared */
	else if (step(r, "workers", workers_step) < 0) {
		r->workers_failed = true;
		log_warn("%s is live, but not all its workers run "
			 "('myapp-zdd status'); 'myapp-zdd rollback' "
			 "restores the previous generation",
		    r->id);
	}
	if (cron_needed(cfg, &r->spec.json) && step(r, "cron", cron_step) < 0) {
		r->cron_failed = true;
		log_warn("%s is live, but its scheduled jobs were not updated: "
			 "%s",
		    r->id, r->reason);
	}
	return 0;
}

static int
prune_step(struct run *r)
{
	return prune_releases(r->cfg, &r->pruned);
}

int
deploy_run(const struct zdd_config *cfg, const struct deploy_request *rq)
{
	char why[ZDD_WHY_MAX];
	struct run r;
	int rc;

	run_init(&r, cfg, ACT_DEPLOY, rq->user);
	r.rq = rq;
	r.rec.branch = rq->branch;
	if (rq->rev != NULL && rq->branch != NULL)
		log_info("-----> %s: deploying %s at %.7s", cfg->app,
		    rq->branch, rq->rev);
	else
		log_info("-----> %s: deploying %s", cfg->app,
		    rq->rev ? rq->rev : cfg->branch);
	rc = take_lock(&r);
	if (rc != 0)
		return rc;
	if (step(&r, "checkout", checkout_step) < 0) {
		r.id[0] = '\0';
		return fail(&r, ZDD_EXIT_FAILED, UNDO_NOTHING);
	}
	r.new_release = true;
	log_info("       release %s (revision %s)", r.id, r.sha);
	if (step(&r, "spec", spec_step) < 0 ||
	    step(&r, "build", build_step) < 0 || interrupted(&r, "build") ||
	    (release_command(&r) != NULL &&
		(step(&r, "release", release_step) < 0 ||
		    interrupted(&r, "release"))))
		return fail(&r, ZDD_EXIT_FAILED, UNDO_ALL);
	rc = handover(&r);
	if (rc != 0)
		return rc;
	if (step(&r, "prune", prune_step) < 0)
		log_warn("pruning failed; the deploy itself succeeded");
	else if (r.pruned > 0)
		log_info("       removed %u old release%s", r.pruned,
		    r.pruned == 1 ? "" : "s");
	if (rq->expect_old != NULL &&
	    branch_record(cfg, r.sha, why, sizeof(why)) < 0)
		log_err("%s", why);
	return finish(&r, ZDD_EXIT_OK);
}

/* What the release to hand over to declares, checked against the grants;
 * a failure says why in r->reason. */
static int
load_existing_spec(struct run *r)
{
	char dir[ZDD_RELEASE_PATH_MAX];

	if (!release_id_valid(r->id) ||
	    release_path(r->cfg->app_root, r->id, NULL, dir, sizeof(dir)) < 0 ||
	    !path_exists(dir)) {
		snprintf(r->reason, sizeof(r->reason),
		    "release %s does not exist", r->id);
		return -ENOENT;
	}
	if (load_spec(r) < 0)
		return -EINVAL;
	return app_spec_check_runnable(
	    dir, &r->spec, r->reason, sizeof(r->reason));
}

/*
 * A rollback behind the release whose release command ran last crosses
 * what that command did (a migration): the older code may not run on the
 * data as it is now. Refused unless forced; either way it is said.
 */
static int
crossing_check(struct run *r, bool force)
{
	char last[ZDD_ID_MAX];
	int rc;

	rc = history_last_release_command(r->cfg->app_root, last, sizeof(last));
	if (rc < 0) {
		errno = -rc;
		snprintf(r->reason, sizeof(r->reason),
		    "cannot read the deploy history (deploys.jsonl): %m");
		return rc;
	}
	if (last[0] == '\0' || strcmp(r->id, last) >= 0)
		return 0;
	if (force) {
		log_warn("%s is older than %s, whose release command ran last: "
			 "rolling back across it (--force)",
		    r->id, last);
		return 0;
	}
	snprintf(r->reason, sizeof(r->reason),
	    "%s is older than %s, whose release command ran last (a "
	    "migration?): its code may not work on the data as that left it; "
	    "'myapp-zdd rollback --force %s' rolls back anyway",
	    r->id, last, r->id);
	return -EPERM;
}

int
rollback_run(
    const struct zdd_config *cfg, const char *id, const char *user, bool force)
{
	struct run r;
	int rc;

	run_init(&r, cfg, ACT_ROLLBACK, user);
	if (id != NULL && !release_id_valid(id)) {
		log_err(
		    "'%s' is not a release id (see 'myapp-zdd releases')", id);
		return ZDD_EXIT_USAGE;
	}
	rc = take_lock(&r);
	if (rc != 0)
		return rc;
	if (read_links(&r) < 0) {
		snprintf(r.reason, sizeof(r.reason),
		    "cannot read the "
		    "current/previous links");
		snprintf(r.final, sizeof(r.final), "nothing changed");
		return fail(&r, ZDD_EXIT_FAILED, UNDO_NOTHING);
	}
	if (id == NULL && r.old.previous[0] == '\0') {
		snprintf(r.reason, sizeof(r.reason),
		    "there is no previous "
		    "release");
		return fail(&r, ZDD_EXIT_FAILED, UNDO_NOTHING);
	}
	snprintf(r.id, sizeof(r.id), "%s", id ? id : r.old.previous);
	log_info("-----> %s: rolling back from %s to %s", cfg->app,
	    live_text(r.old.current), r.id);
	if (strcmp(r.id, r.old.current) == 0) {
		snprintf(
		    r.reason, sizeof(r.reason), "%s is already live", r.id);
		r.id[0] = '\0';
		return fail(&r, ZDD_EXIT_FAILED, UNDO_NOTHING);
	}
	if (load_existing_spec(&r) < 0 || crossing_check(&r, force) < 0) {
		r.id[0] = '\0';
		return fail(&r, ZDD_EXIT_FAILED, UNDO_NOTHING);
	}
	if (release_read_file(
		cfg->app_root, r.id, "REVISION", r.sha, sizeof(r.sha)) < 0)
		r.sha[0] = '\0';
	rc = handover(&r);
	return rc != 0 ? rc : finish(&r, ZDD_EXIT_OK);
}

int
restart_run(const struct zdd_config *cfg, const char *user)
{
	struct run r;
	int rc;

	run_init(&r, cfg, ACT_RESTART, user);
	rc = take_lock(&r);
	if (rc != 0)
		return rc;
	if (read_links(&r) < 0 || r.old.current[0] == '\0') {
		snprintf(r.reason, sizeof(r.reason),
		    "no current release "
		    "(nothing deployed yet?)");
		snprintf(r.final, sizeof(r.final), "nothing changed");
		return fail(&r, ZDD_EXIT_FAILED, UNDO_NOTHING);
	}
	snprintf(r.id, sizeof(r.id), "%s", r.old.current);
	log_info("-----> %s: restarting %s through a handover", cfg->app, r.id);
	if (load_existing_spec(&r) < 0)
		return fail(&r, ZDD_EXIT_FAILED, UNDO_NOTHING);
	if (release_read_file(
		cfg->app_root, r.id, "REVISION", r.sha, sizeof(r.sha)) < 0)
		r.sha[0] = '\0';
	rc = handover(&r);
	return rc != 0 ? rc : finish(&r, ZDD_EXIT_OK);
}
