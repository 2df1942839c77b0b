# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Atomic file writes under an exclusive lock.

Every file the collection writes on the controller (allocation ledgers,
placement assignments) goes through here, so a crash or a concurrent run can
never leave a half-written file or lose an update:

- ``locked(path)`` takes an exclusive ``flock`` on ``<path>.lock`` for a
  read-modify-write cycle; a second process waits (bounded by ``timeout``).
- ``atomic_write_text(path, text)`` (``atomic_write_bytes`` for bytes) writes a temporary file in the same
  directory, fsyncs it and renames it over ``path``; readers see the old or
  the new content, never a mix.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
import time

from .errors import BaremetalError


class LockTimeout(BaremetalError):
    """Another process held the lock for longer than the timeout."""


@contextlib.contextmanager
def locked(path, timeout=60.0, poll=0.05):
    """Hold an exclusive lock on ``<path>.lock`` for the duration of the block."""
    lock_path = path + ".lock"
    directory = os.path.dirname(os.path.abspath(lock_path))
    os.makedirs(directory, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        "%s: another run holds the lock %s for more than %.0f s; "
                        "wait for it to finish, or remove the lock file if no run is active"
                        % (path, lock_path, timeout)
                    ) from exc
                time.sleep(poll)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def atomic_write_text(path, text, mode=0o644):
    """Replace ``path`` with ``text`` (UTF-8) atomically (temp file, fsync, rename)."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def atomic_write_bytes(path, data, mode=0o644):
    """Replace ``path`` with the bytes ``data`` atomically (temp file, fsync, rename).

    The temporary file is created 0600 (``mkstemp``) and only given ``mode`` once written, so a secret is never
    readable by others on the way.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
