# myapp-zdd — entry points. `make` builds the two programs; `make deb` the
# package; `make check` runs every test (unit, lint, the package under
# systemd in throw-away machines); `make demo` a deploy under load.

PREFIX        ?= /usr
SYSTEMDUNITDIR ?= $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
DATADIR       := $(PREFIX)/share/myapp-zdd
LIBDIR        := $(PREFIX)/lib/myapp-zdd
SUITES        ?= bookworm trixie
BUILDDIR      ?= build

# The reference app's sources as seeded into the bare repo (what `make`
# there needs, nothing built).
APP_SOURCES = $(wildcard src/app/*.c src/app/*.h) src/app/Makefile src/app/myapp.8

.PHONY: all build install clean deps unit verify-units deb lintian system check demo bench fuzz

all: build

build:
	$(MAKE) -C src/app
	$(MAKE) -C src/zdd

install:
	install -D -m 0755 src/zdd/myapp-zdd $(DESTDIR)$(PREFIX)/bin/myapp-zdd
	install -D -m 0755 src/app/myapp $(DESTDIR)$(LIBDIR)/myapp
	install -d $(DESTDIR)$(DATADIR)/app
	install -m 0644 $(APP_SOURCES) $(DESTDIR)$(DATADIR)/app/
	ln -sf myapp $(DESTDIR)$(DATADIR)/app/start
	# as "gitignore": a dot-file of a VCS has no place in a package
	install -m 0644 src/app/.gitignore $(DESTDIR)$(DATADIR)/app/gitignore
	install -D -m 0755 hooks/pre-receive $(DESTDIR)$(DATADIR)/hooks/pre-receive
	install -d $(DESTDIR)$(DATADIR)/provision
	install -m 0755 provision/myapp-zdd-* $(DESTDIR)$(DATADIR)/provision/
	install -m 0644 provision/common.sh $(DESTDIR)$(DATADIR)/provision/
	install -d $(DESTDIR)$(DATADIR)/provision/git-shell-commands
	install -m 0755 provision/git-shell-commands/* $(DESTDIR)$(DATADIR)/provision/git-shell-commands/
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0644 systemd/*.socket systemd/*.service systemd/*.timer systemd/*.slice $(DESTDIR)$(SYSTEMDUNITDIR)/
	install -D -m 0644 systemd/sandbox.conf $(DESTDIR)$(SYSTEMDUNITDIR)/myapp.service.d/sandbox.conf
	install -D -m 0644 systemd/sandbox.conf $(DESTDIR)$(SYSTEMDUNITDIR)/myapp@.service.d/sandbox.conf
	install -D -m 0644 systemd/sandbox.conf $(DESTDIR)$(SYSTEMDUNITDIR)/myapp-twin@.service.d/sandbox.conf
	install -D -m 0644 systemd/sandbox.conf $(DESTDIR)$(SYSTEMDUNITDIR)/myapp-release@.service.d/sandbox.conf
	install -D -m 0644 systemd/sandbox.conf $(DESTDIR)$(SYSTEMDUNITDIR)/myapp-worker@.service.d/sandbox.conf
	install -D -m 0644 systemd/sandbox.conf $(DESTDIR)$(SYSTEMDUNITDIR)/myapp-web@.service.d/sandbox.conf
	install -D -m 0644 systemd/sandbox.conf $(DESTDIR)$(SYSTEMDUNITDIR)/myapp-cron@.service.d/sandbox.conf
	install -D -m 0644 systemd/sandbox.conf $(DESTDIR)$(SYSTEMDUNITDIR)/myapp-run@.service.d/sandbox.conf
	install -D -m 0644 polkit/myapp-zdd.rules $(DESTDIR)$(PREFIX)/share/polkit-1/rules.d/myapp-zdd.rules
	install -D -m 0644 nginx/myapp-zdd.conf $(DESTDIR)/etc/nginx/sites-available/myapp-zdd

clean:
	$(MAKE) -C src/app clean
	$(MAKE) -C src/zdd clean
	rm -rf $(BUILDDIR)

# Build dependencies and test tools, installed only when missing.
deps:
	tests/setup/install-deps

unit:
	tests/check unit

verify-units:
	tests/lint/verify-units systemd

deb:
	tests/setup/build-deb $(BUILDDIR)

lintian:
	tests/check lintian

system:
	tests/check system $(SUITES)

check:
	tests/check all $(SUITES)

demo:
	tests/demo/demo

# Benchmarks print tables (figures, not tests); tests/bench/run exits non-zero
# when a fault drill fails or a series' deploys did not go through.
bench: deps
	tests/bench/perf/app-vs-nginx
	if [ -x tests/bench/run ]; then tests/bench/run; fi
	tests/bench/builds

fuzz:
	$(MAKE) -C tests/fuzz fuzz
