"""Exclusive, atomic writing of a run's output folder (``hf-zsl train --output-dir DIR``).

A run folder is never half-written and never shared:

* **lock**: ``.DIR.lock`` beside ``DIR`` is held with :func:`fcntl.flock` for the whole run, so a
  second run into the same folder fails at once, naming the run that holds it (the kernel releases
  the lock of a killed process, so a crash never leaves a stale lock behind);
* **staging**: everything is written into a temporary sibling ``.DIR.partial-*`` and moved into place
  only once complete (:meth:`RunFolder.publish`); with ``--overwrite`` the old run is renamed to
  ``.DIR.replaced-*``, the new one to ``DIR``, and only then is the old one deleted;
* **recovery**: siblings left by a killed run are recognised under the lock and removed, and an old
  run caught mid-swap (renamed aside, new one not yet in place) is put back first;
* **room**: the parent folder's writability and free space (:func:`shutil.disk_usage`) are checked
  before anything trains; a full disk while saving becomes an error naming the folder, and the old
  run is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import os
import secrets
import shutil
import socket
import time
import warnings

from safetensors import SafetensorError

# What one task of a run may write (weights of the learned parts, tokenizer, processor, code, card):
# a few MB on the embedded base; the margin covers caches and heads of real bases.
RUN_BYTES_PER_TASK = 64 * 2**20
PARTIAL, REPLACED = "partial", "replaced"


def _sibling(output_dir: str, kind: str) -> str:
    """``parent/.name.<kind>``: a hidden sibling of ``output_dir`` (same file system, so renames are atomic)."""
    parent, name = os.path.split(os.path.abspath(output_dir))
    return os.path.join(parent, f".{name}.{kind}")


def _room_error(folder: str, error: BaseException) -> OSError:
    """``error`` (raised while writing into ``folder``) as an OSError saying what to do."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC or "No space left" in str(error):
        return OSError(errno.ENOSPC, f"The disk holding {folder} is full; free some space (or choose an --output-dir "
                       "on another disk) and run again. Nothing was replaced.")
    if isinstance(error, OSError) and error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OSError(error.errno, f"{folder} is not writable ({error.strerror}); choose an --output-dir you can "
                       "write to, or fix its permissions. Nothing was replaced.")
    return OSError(f"Writing the run into {folder} failed ({type(error).__name__}: {error}); nothing was replaced.")


class RunFolder:
    """Holds ``output_dir``'s lock while a run trains, stages its files, and publishes them atomically.

    Use as a context manager: the lock is taken on entry (raising ``ValueError`` if another run holds it)
    and released on exit; leaving the block with an exception deletes the staging folder, so the
    previous contents of ``output_dir`` are untouched.

    Attributes:
        output_dir: the folder the run publishes to.
        staging: the temporary sibling the run writes into (after :meth:`stage`).
    """

    def __init__(self, output_dir: str):
        self.output_dir = os.path.abspath(output_dir)
        self.parent = os.path.dirname(self.output_dir)
        self.lock_path = _sibling(self.output_dir, "lock")
        self.staging: str | None = None
        self._lock_fd: int | None = None

    def __enter__(self) -> RunFolder:
        self._make_parent()
        self._acquire()
        try:
            self._recover()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if self.staging is not None:
                shutil.rmtree(self.staging, ignore_errors=True)
        finally:
            self._release()

    def _make_parent(self) -> None:
        try:
            os.makedirs(self.parent, exist_ok=True)
        except OSError as error:
            raise _room_error(self.parent, error) from None

    def _acquire(self) -> None:
        """Take the lock file's ``flock``, retrying if the holder removed the file meanwhile."""
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise _room_error(self.parent, error) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 4096).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise ValueError(
                    f"--output-dir {self.output_dir} is being written by another run ({holder}; lock {self.lock_path}). "
                    "Wait for it to finish or choose another --output-dir."
                ) from None
            if os.path.exists(self.lock_path) and os.path.samestat(os.fstat(fd), os.stat(self.lock_path)):
                break
            os.close(fd)  # the previous holder unlinked this file after we opened it: lock the new one
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        self._lock_fd = fd

    def _release(self) -> None:
        if self._lock_fd is None:
            return
        try:
            os.unlink(self.lock_path)
        except FileNotFoundError:
            pass
        os.close(self._lock_fd)  # closing releases the flock
        self._lock_fd = None

    def _leftovers(self, kind: str) -> list[str]:
        return sorted(glob.glob(glob.escape(_sibling(self.output_dir, kind)) + "-*"))

    def _recover(self) -> None:
        """Undo what a killed run left (we hold the lock, so no live run owns these siblings)."""
        replaced = self._leftovers(REPLACED)
        if replaced and not os.path.exists(self.output_dir):
            os.rename(replaced.pop(), self.output_dir)  # killed between its two renames: the old run goes back
            warnings.warn(f"Restored {self.output_dir} from a run killed while replacing it.", stacklevel=3)
        for leftover in replaced + self._leftovers(PARTIAL):
            warnings.warn(f"Removing {leftover}, left by a run that was killed or failed.", stacklevel=3)
            shutil.rmtree(leftover, ignore_errors=True)

    def stage(self, needed_bytes: int) -> str:
        """Check the parent folder's free space, then create and return the staging folder.

        Raises:
            OSError: if the parent folder is not writable or has less than ``needed_bytes`` free.
        """
        free = shutil.disk_usage(self.parent).free
        if free < needed_bytes:
            raise OSError(
                errno.ENOSPC,
                f"{self.parent} has {free / 2**20:.0f} MiB free, less than the {needed_bytes / 2**20:.0f} MiB this run "
                "may write; free some space or choose an --output-dir on another disk.",
            )
        staging = self._fresh(PARTIAL)
        try:
            os.mkdir(staging)
        except OSError as error:
            raise _room_error(self.parent, error) from None
        self.staging = staging
        return staging

    def _fresh(self, kind: str) -> str:
        """A new ``.DIR.<kind>-<pid>-<random>`` sibling path (not created)."""
        return f"{_sibling(self.output_dir, kind)}-{os.getpid()}-{secrets.token_hex(4)}"

    def publish(self) -> None:
        """Move the staging folder into place, swapping out an existing ``output_dir`` only now.

        Raises:
            OSError: if the swap fails (the old ``output_dir`` is then put back).
        """
        backup = self._fresh(REPLACED) if os.path.lexists(self.output_dir) else None
        try:
            if backup is not None:
                os.rename(self.output_dir, backup)
            try:
                os.rename(self.staging, self.output_dir)
            except OSError:
                if backup is not None:
                    os.rename(backup, self.output_dir)
                raise
        except OSError as error:
            raise _room_error(self.output_dir, error) from None
        self.staging = None
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)

    @contextlib.contextmanager
    def writing(self):
        """Context for writing into the staging folder: a failed write (full disk, permissions, safetensors'
        own errors) becomes :func:`_room_error`'s OSError naming ``output_dir``."""
        try:
            yield self.staging
        except (OSError, SafetensorError) as error:
            raise _room_error(self.output_dir, error) from error
