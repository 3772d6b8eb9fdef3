# The engine's sources but main.c: one list, for src/zdd/Makefile and the
# unit tests (tests/unit/zdd/Makefile).
ZDD_ENGINE_SRCS = config.c log.c clock.c spawn.c privdrop.c env.c lock.c \
           refline.c release_id.c release_path.c links.c prune.c \
           checkout.c build.c units.c probe.c history.c deploy.c info.c \
           branch.c logs.c config_cmd.c file_read.c procfile.c app_json.c \
           app_spec.c builder.c profile.c launch.c build_exec.c \
           release_cmd.c workers.c instances.c processes.c ps.c \
           cron.c cron_sync.c cron_jobs.c \
           appenv.c appenv_serve.c appenv_cmd.c webhook.c \
           run_serve.c run_cmd.c
ZDD_PKGS = libcurl json-c libsystemd
