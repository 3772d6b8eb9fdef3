# gunicorn reads ./gunicorn.conf.py by itself (gunicorn >= 20).
#
# Each gunicorn worker calls setuid() to the user it should run as, even when
# it already is that user (gunicorn/util.py set_owner_process). The strict
# sandbox forbids setuid() outright (SystemCallFilter=~@privileged, EPERM),
# so every worker would fail to boot. Skip the call when there is nothing to
# change; a real change of user is still attempted (and still refused).
import os

import gunicorn.util

_set_owner_process = gunicorn.util.set_owner_process


def _set_owner_unless_same(uid, gid, initgroups=False):
    if uid == os.geteuid() and gid == os.getegid():
        return
    _set_owner_process(uid, gid, initgroups)


gunicorn.util.set_owner_process = _set_owner_unless_same
