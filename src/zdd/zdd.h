/*
 * myapp-zdd: zero-downtime deploy engine — interfaces shared between the
 * engine's files.  Everything not declared here is static to its file.
 */
#ifndef ZDD_H
#define ZDD_H

#include <stdbool.h>
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define ZDD_VERSION "0.7.0"
#define ZDD_DEFAULT_CONFIG "/etc/myapp-zdd/myapp-zdd.conf"
#define ZDD_CLEAN_PATH "/usr/local/bin:/usr/bin:/bin"

/* Exit codes (documented in myapp-zdd.8). */
enum zdd_exit {
	ZDD_EXIT_OK = 0,     /* done */
	ZDD_EXIT_FAILED = 1, /* failed before the swap: nothing live changed */
	ZDD_EXIT_USAGE = 2,  /* usage or configuration error */
	ZDD_EXIT_LOCK = 3,   /* another deploy held the lock too long */
	ZDD_EXIT_ROLLED_BACK =
	    4, /* failed after the swap, previous release restored */
	ZDD_EXIT_BROKEN =
	    5, /* failed after the swap and restoring failed too */
};

#define ZDD_NAME_MAX 64    /* APP, DEPLOY_USER */
#define ZDD_PATH_MAX 1024  /* every configured path */
#define ZDD_VALUE_MAX 1024 /* longest config value (BUILD_COMMAND) */
#define ZDD_LINE_MAX 4096  /* longest config / ref line */
#define ZDD_REF_MAX 256    /* ref and branch names */
#define ZDD_SHA_MAX 64     /* sha-1 (40) or sha-256 (64) hex */
#define ZDD_ID_MAX 32      /* YYYYmmddHHMMSS-abcdef1 is 22 */
#define ZDD_STEPS_MAX 16

/*
 * The error rule: a function that fails returns a negative errno and, where
 * it takes one, says why in a buffer (why/whylen); only the caller that
 * decides what the failure means logs it, once.
 */
#define ZDD_WHY_MAX 4096

/* config.c */
struct zdd_config {
	char app[ZDD_NAME_MAX + 1];
	char deploy_user[ZDD_NAME_MAX + 1];
	char repo[ZDD_PATH_MAX];
	char app_root[ZDD_PATH_MAX];
	char branch[ZDD_REF_MAX];
	unsigned keep_releases;
	char build_command[ZDD_VALUE_MAX];
	unsigned build_timeout;
	char build_memory_max[24]; /* MemoryMax= of the build unit */
	unsigned ready_timeout;
	char health_path[ZDD_REF_MAX];
	unsigned health_timeout;
	unsigned lock_timeout;
	char deploy_webhook[ZDD_VALUE_MAX]; /* "": none */
	unsigned deploy_webhook_timeout;
	char probe_socket_dir[ZDD_PATH_MAX];
	char sandbox_grants[32]; /* "", "jit", "network", "jit,network" */
	/* Programs run; overridable so tests can stand in for systemd. */
	char systemctl[ZDD_PATH_MAX];
	char journalctl[ZDD_PATH_MAX];
	char git[ZDD_PATH_MAX];
	char systemd_analyze[ZDD_PATH_MAX];
	/* Site settings (server.conf): checked here, used by the package. */
	char listen[ZDD_PATH_MAX];
	char server_name[ZDD_VALUE_MAX];
	char nginx_site[8];
	char nginx_any_host[8];
	char https[16];
	char tls_certificate[ZDD_PATH_MAX]; /* "": none */
	char tls_key[ZDD_PATH_MAX];
	char letsencrypt_email[ZDD_VALUE_MAX];
	char acme_server[ZDD_VALUE_MAX];
};

int app_socket_path(
    const struct zdd_config *cfg, const char *what, char *out, size_t n);
void config_defaults(struct zdd_config *cfg);
int config_set(struct zdd_config *cfg, const char *key, const char *value,
    const char *where);
int config_parse_line(
    struct zdd_config *cfg, const char *line, const char *where);
int config_load(struct zdd_config *cfg, const char *path, bool must_exist);
size_t config_nkeys(void);
const char *config_key(size_t i);
const char *config_key_default(size_t i);
bool config_key_is_site(size_t i);
bool config_known(const char *key);
int config_value(const struct zdd_config *cfg, size_t i, char *out, size_t n);

/* config_cmd.c */
int config_command(const char *config_path, int argc, char *argv[]);

/* log.c */
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_step(const char *name, const char *result, double seconds);
void log_file_tail(const char *path, unsigned lines);

/* clock.c */
double clock_seconds(void);
void clock_sleep(double s);

/* spawn.c */
struct spawn_opts {
	const char *cwd;        /* NULL: inherit */
	char *const *extra_env; /* "K=V" added to the (clean) environment */
	int in_fd;              /* -1: /dev/null */
	int out_fd;             /* -1: inherit */
	int err_fd;             /* -1: inherit */
	bool new_pgrp;          /* own process group, killed as a whole */
	bool low_priority;      /* SCHED_IDLE CPU, best-effort 7 I/O */
	unsigned timeout_s;     /* 0: none */
};
int spawn_run(char *const argv[], const struct spawn_opts *o, int *wstatus);
int spawn_capture(char *const argv[], const struct spawn_opts *o, char *out,
    size_t outsz, int *wstatus);
bool spawn_ok(int wstatus);
void spawn_describe(int wstatus, char *buf, size_t n);
void spawn_reset_signals(void);
void spawn_close_inherited_fds(void);
int spawn_self_argv(const char *config_path, const char *command, char *self,
    size_t selfsz, char *argv[5]);

/* privdrop.c */
int privdrop(const char *user);

/* appenv.c, appenv_serve.c, appenv_cmd.c: the app's environment file */
#define APPENV_KEY_MAX 128
#define APPENV_VALUE_MAX 4096
#define APPENV_VARS_MAX 256
#define APPENV_FILE_MAX ((size_t)256 * 1024)
bool appenv_key_valid(const char *key, char *why, size_t whylen);
bool appenv_value_valid(const char *value, char *why, size_t whylen);
int appenv_assignment_parse(const char *arg, char *key, size_t keysz,
    const char **value, char *why, size_t whylen);
int appenv_args_check(
    bool assignments, char *const *args, size_t n, char *why, size_t whylen);
int appenv_line_parse(const char *line, size_t linelen, char *key, size_t keysz,
    char *value, size_t valuesz);
int appenv_format(const char *key, const char *value, char *out, size_t n);
int appenv_edit(const char *old, char *const *set, size_t nset,
    char *const *unset, size_t nunset, char **out, bool *changed, char *why,
    size_t whylen);
int appenv_serve_command(const char *config_path, int argc, char *argv[]);
int appenv_command(const char *config_path, int argc, char *argv[]);

/* env.c */
int env_sanitize(void);

/* lock.c */
int lock_acquire(const char *app_root, unsigned timeout_s, int *fd_out,
    char *why, size_t whylen);
void lock_release(int fd);

/* refline.c */
struct ref_update {
	char old_sha[ZDD_SHA_MAX + 1];
	char new_sha[ZDD_SHA_MAX + 1];
	char ref[ZDD_REF_MAX];
};
int refline_parse(const char *line, struct ref_update *u);
bool sha_is_zero(const char *sha);
bool sha_valid(const char *sha);

/* release_id.c */
int release_id_make(time_t t, const char *sha, char *out, size_t n);
bool release_id_valid(const char *id);
int release_id_pick(const char *app_root, const char *sha, char *out, size_t n,
    char *why, size_t whylen);

/* release_path.c */
#define ZDD_RELEASE_PATH_MAX (ZDD_PATH_MAX + 128)
int release_path(const char *app_root, const char *entry, const char *name,
    char *out, size_t n);
bool path_exists(const char *path);
int release_read_file(const char *app_root, const char *id, const char *name,
    char *buf, size_t n);

/* links.c */
struct links {
	char current[ZDD_ID_MAX]; /* "" when missing or broken */
	char previous[ZDD_ID_MAX];
	int current_rc; /* 0, -ENOENT (missing), or broken */
	int previous_rc;
};
int links_read(const char *app_root, struct links *l, char *why, size_t whylen);
int links_swap(const char *app_root, const char *name, const char *id,
    char *why, size_t whylen);
int links_remove(
    const char *app_root, const char *name, char *why, size_t whylen);
int links_restore(
    const char *app_root, const struct links *old, char *why, size_t whylen);

/* prune.c */
int release_list(const char *app_root, char ***ids, size_t *n);
void release_list_free(char **ids, size_t n);
void prune_select(char *const *ids, size_t n, const char *current,
    const char *previous, unsigned keep, bool *remove);
int release_remove(const char *app_root, const char *name);
int prune_releases(const struct zdd_config *cfg, unsigned *removed);
int prune_run(const struct zdd_config *cfg);

/* checkout.c */
int git_rev_parse(const struct zdd_config *cfg, const char *spec, char *sha,
    size_t n, char *why, size_t whylen);
int release_resolve(const struct zdd_config *cfg, const char *rev, char *sha,
    size_t n, char *why, size_t whylen);
int release_checkout(const struct zdd_config *cfg, const char *sha,
    const char *id, char *why, size_t whylen);

/* build.c */
int build_run(const struct zdd_config *cfg, const char *id, const char *command,
    char *why, size_t whylen);

/* units.c */
int unit_name(const struct zdd_config *cfg, const char *kind, const char *id,
    char *out, size_t n);
int units_run(const struct zdd_config *cfg, unsigned timeout_s,
    const char *verb, const char *unit1, const char *unit2, char *why,
    size_t whylen);
void units_reset_failed(
    const struct zdd_config *cfg, const char *unit1, const char *unit2);
int units_show(const struct zdd_config *cfg, const char *unit);
int units_properties(const struct zdd_config *cfg, const char *unit,
    const char *p1, const char *p2, const char *p3, char *out, size_t n,
    char *why, size_t whylen);
int units_list(
    const struct zdd_config *cfg, const char *suffix, char *out, size_t n);
#define UNITS_PATTERNS_MAX 16
int units_list_any(const struct zdd_config *cfg, const char *const *suffixes,
    size_t nsuffixes, char *out, size_t n);
#define UNITS_SHOW_MAX 64
int units_show_many(const struct zdd_config *cfg, const char *props,
    const char *const *units, size_t nunits, char *out, size_t n, char *why,
    size_t whylen);
struct unit_state {
	char active[32]; /* ActiveState */
	long main_pid;
	unsigned long restarts; /* NRestarts */
};
struct unit_result {
	char result[32]; /* systemd's Result= */
	int exit_status; /* ExecMainStatus= */
};
int units_result(const struct zdd_config *cfg, const char *unit,
    struct unit_result *res, char *why, size_t whylen);
int units_run_oneshot(const struct zdd_config *cfg, const char *unit,
    unsigned timeout_s, const char *what, struct unit_result *res, char *why,
    size_t whylen);
int units_state(const struct zdd_config *cfg, const char *unit,
    struct unit_state *st, char *why, size_t whylen);
int units_side_instances(const struct zdd_config *cfg, bool stop_strays);

/* release_cmd.c */
int release_command_run(const struct zdd_config *cfg, const char *id,
    const char *command, char *why, size_t whylen);

/* logs.c */
bool logs_unit_allowed(const struct zdd_config *cfg, const char *unit);
#define LOGS_UNIT_MAX 128
/* One request to the logs socket: "UNIT LINES[ follow]\n". */
struct logs_request {
	char unit[LOGS_UNIT_MAX];
	unsigned lines;
	bool follow; /* journalctl -f: then until the reader goes */
};
int logs_parse_request(
    const struct zdd_config *cfg, const char *line, struct logs_request *req);
int logs_serve(const struct zdd_config *cfg);
void logs_tail(const struct zdd_config *cfg, const char *unit, unsigned lines);
int logs_show(const struct zdd_config *cfg, const char *unit, const char *lines,
    bool follow);

/* probe.c */
int probe_socket_path(
    const struct zdd_config *cfg, const char *id, char *out, size_t n);
int probe_get(
    const char *socket_path, const char *path, long timeout_ms, long *code);
struct health_check;
struct probe_request {
	const char *socket_path;
	const struct health_check *check; /* app.json's, or undeclared */
	const char *default_path;         /* HEALTH_PATH */
	unsigned total_s;                 /* HEALTH_TIMEOUT, when undeclared */
	bool lenient; /* undeclared, no READY=1: / may stand for it */
	/* between attempts: false ends the check (the instance is gone) */
	bool (*alive)(const void *ctx, char *why, size_t whylen);
	const void *ctx;
};
int probe_check(const struct probe_request *rq, char *note, size_t notelen,
    char *why, size_t whylen);

/* file_read.c */
int file_read_bounded(
    const char *path, size_t max, char **text, char *why, size_t whylen);
int fd_write_all(int fd, const char *s, size_t n);

/* procfile.c */
#define ZDD_PROC_TYPE_MAX 32
#define ZDD_PROC_CMD_MAX 2048
#define ZDD_PROCS_MAX 16
struct procfile {
	struct {
		char type[ZDD_PROC_TYPE_MAX + 1];
		char command[ZDD_PROC_CMD_MAX];
	} procs[ZDD_PROCS_MAX];
	size_t n;
};
int procfile_parse(
    const char *text, struct procfile *p, char *why, size_t whylen);
int procfile_load(
    const char *path, struct procfile *p, char *why, size_t whylen);
const char *procfile_command(const struct procfile *p, const char *type);
bool procfile_type_valid(const char *s, size_t len);

/* instances.c */
struct web_instance_names { /* web process k (2 and up) */
	char id[8];         /* "k" */
	char probe_id[16];  /* "web-k": its probe socket's name */
	char unit[ZDD_NAME_MAX + 24];
	char probe_unit[ZDD_NAME_MAX + 32];
	char socket[ZDD_PATH_MAX + 96];
};
int web_instance_units(
    const struct zdd_config *cfg, unsigned k, struct web_instance_names *w);
int web_instances_loaded(const struct zdd_config *cfg, unsigned *mask);
int web_instances_stop_above(const struct zdd_config *cfg, unsigned quantity);
int web_instances_show(const struct zdd_config *cfg, unsigned quantity);

/* processes.c */
int processes_start_live(const struct zdd_config *cfg);

/* workers.c */
struct worker_results { /* what a run did to each worker type */
	struct {
		char type[ZDD_PROC_TYPE_MAX + 1];
		const char *result; /* running, failed, stopped, stop-failed */
	} w[ZDD_PROCS_MAX * 2];
	size_t n;
};
bool worker_type(const char *type);
bool worker_unit_type(
    const struct zdd_config *cfg, const char *unit, char *type, size_t n);
size_t workers_declared(const struct procfile *p);
int workers_replace(const struct zdd_config *cfg, const struct procfile *p,
    const char *verb, struct worker_results *res);
int workers_show(const struct zdd_config *cfg, const struct procfile *p);

/* app_json.c */
enum zdd_need { ZDD_NEED_JIT = 1 << 0, ZDD_NEED_NETWORK = 1 << 1 };
enum zdd_readiness { ZDD_READY_UNSET, ZDD_READY_NOTIFY, ZDD_READY_HEALTH };
struct health_check {
	char path[ZDD_REF_MAX]; /* "": no HTTP check (uptime only) */
	unsigned attempts;      /* 0: retry until the timeout */
	unsigned timeout_s;     /* per attempt; 0: the default */
	unsigned wait_s;        /* between attempts */
	unsigned initial_delay_s;
	unsigned uptime_s; /* the process must stay up this long */
	bool declared;
};
#define ZDD_WEB_QUANTITY_MAX 16
/* cron.c */
#define ZDD_CRON_MAX 16 /* app.json cron entries */
#define ZDD_CRON_SCHEDULE_MAX 128
#define ZDD_CRON_CALENDAR_MAX 768
struct cron_entry {
	char command[ZDD_PROC_CMD_MAX];
	char schedule[ZDD_CRON_SCHEDULE_MAX]; /* as app.json writes it */
	char calendar[ZDD_CRON_CALENDAR_MAX]; /* as OnCalendar= */
	bool maintenance;                     /* declared, not run */
};
int cron_calendar(
    const char *schedule, char *out, size_t n, char *why, size_t whylen);
bool cron_calendar_valid(const char *calendar);

struct app_json {
	struct health_check health;
	unsigned web_quantity; /* formation.web.quantity; 0: not declared */
	struct cron_entry cron[ZDD_CRON_MAX]; /* "cron", job N at [N - 1] */
	unsigned ncron;
	unsigned needs; /* enum zdd_need bits */
	enum zdd_readiness readiness;
	char build[ZDD_VALUE_MAX];
};
int needs_parse(const char *name, unsigned *bit);
void needs_format(unsigned needs, char *out, size_t n);
int app_json_parse(
    const char *text, struct app_json *a, char *why, size_t whylen);
int app_json_load(
    const char *path, struct app_json *a, char *why, size_t whylen);

/* app_spec.c */
struct app_spec {
	struct procfile procfile;
	bool has_procfile;
	const char *web; /* the Procfile's web command; NULL: ./start */
	struct app_json json;
	enum zdd_readiness readiness;
	char readiness_why[128];
};
int app_spec_load(
    const char *dir, struct app_spec *s, char *why, size_t whylen);
int app_spec_check_runnable(
    const char *dir, const struct app_spec *s, char *why, size_t whylen);
const char *readiness_name(enum zdd_readiness r);
unsigned app_spec_web_quantity(const struct app_spec *s);

/* cron_sync.c */
int cron_sync_list(const struct zdd_config *cfg);
int cron_sync_command(const char *config_path, int argc, char *argv[]);

/* cron_jobs.c */
bool cron_needed(const struct zdd_config *cfg, const struct app_json *j);
int cron_apply(const struct zdd_config *cfg, const struct app_json *j,
    char *why, size_t whylen);
int cron_show(const struct zdd_config *cfg, const struct app_json *j);

/* builder.c */
struct build_plan {
	char name[16]; /* make, npm, python, go, command, none */
	char why[256];
	char command[ZDD_VALUE_MAX + 128]; /* "": nothing to run */
};
int builder_plan(const char *dir, const char *given, const char *given_why,
    struct build_plan *p, char *why, size_t whylen);
size_t builder_env(const char *cache_dir, char **env, size_t n);

/* profile.c */
int grants_parse(const char *text, unsigned *grants);
int profile_check(const struct zdd_config *cfg, unsigned needs, char *line,
    size_t n, char *why, size_t whylen);
int profile_exposure(
    const struct zdd_config *cfg, const char *unit, char *out, size_t n);

/* launch.c */
int launch_command(const char *config_path, int argc, char *argv[]);
int launch_environment(void);

/* run_serve.c, run_cmd.c: `run`, one message each way on a SOCK_SEQPACKET
 * connection (see run_serve.c) */
#define RUN_COMMAND_MAX 4096
#define RUN_MSG_MAX 4097 /* a tag byte and up to 4096 bytes */
int run_request_check(const char *cmd, size_t n, char *why, size_t whylen);
int run_command_expand(
    const struct app_spec *spec, const char *cmd, char *out, size_t n);
int run_serve_command(const char *config_path, int argc, char *argv[]);
int run_command(const char *config_path, int argc, char *argv[]);

/* build_exec.c */
int build_exec_command(const char *config_path, int argc, char *argv[]);

/* history.c */
struct step_time {
	const char *name;
	double seconds;
};
struct deploy_record {
	const char *action; /* deploy, rollback, restart */
	const char *id;
	const char *revision;
	const char *branch;
	const char *user;
	struct timespec started; /* CLOCK_REALTIME */
	struct timespec finished;
	const char *result; /* ok, failed, rolled-back, broken */
	const char *failed_step;
	const char *reason;
	const char *release_command;          /* the Procfile's release: */
	const char *release_command_result;   /* ok, failed; NULL: not run */
	const struct worker_results *workers; /* NULL: none touched */
	struct step_time steps[ZDD_STEPS_MAX];
	size_t nsteps;
};
int history_format(const struct deploy_record *r, char **line);

/* webhook.c */
void webhook_send(
    const struct zdd_config *cfg, const struct deploy_record *rec);
int history_append(const char *app_root, const struct deploy_record *r);
int history_last_release_command(const char *app_root, char *id, size_t n);
int history_last_worker_start(
    const char *app_root, const char *type, char *id, size_t n);

/* deploy.c */
extern volatile sig_atomic_t zdd_interrupted; /* SIGINT/SIGTERM seen */
struct deploy_request {
	const char *rev;           /* NULL: tip of BRANCH */
	const char *build_command; /* NULL: from config */
	const char *branch;        /* for the history; NULL for a bare REV */
	const char *user;          /* who asked, for the history */
	const char *expect_old; /* from a push: the branch must still be here */
};
int deploy_run(const struct zdd_config *cfg, const struct deploy_request *rq);
int rollback_run(
    const struct zdd_config *cfg, const char *id, const char *user, bool force);
int restart_run(const struct zdd_config *cfg, const char *user);

/* branch.c */
int branch_check_unmoved(
    const struct zdd_config *cfg, const char *old_sha, char *why, size_t n);
int branch_record(
    const struct zdd_config *cfg, const char *sha, char *why, size_t n);

/* info.c */
int releases_show(const struct zdd_config *cfg);
int status_show(const struct zdd_config *cfg);

/* ps.c */
int ps_show(const struct zdd_config *cfg);

#endif /* ZDD_H */
