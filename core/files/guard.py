"""Look before opening: what a path is, from ``os.stat``, before anything reads it.

Opening a named pipe blocks until someone writes to it, and reading a device can
return bytes forever — so every entry point that reads a user's file asks here first,
and opens only regular files (and, for data, folders). The check is repeated on the
opened descriptor, so a path swapped for a pipe after the first look is still refused.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path
from typing import BinaryIO

from core.errors import MechscopeError, ModelLoadError

log = logging.getLogger(__name__)

#: What a non-regular path is, in the words of the message.
SPECIAL = (("folder", stat.S_ISDIR, "a folder"), ("pipe", stat.S_ISFIFO, "a named pipe"),
           ("socket", stat.S_ISSOCK, "a socket"), ("device", stat.S_ISCHR, "a device"),
           ("device", stat.S_ISBLK, "a device"))


def kind_of(mode: int) -> tuple[str, str]:
    """(short kind, words) of an ``st_mode``: ``("file", "a file")`` for a regular one."""
    if stat.S_ISREG(mode):
        return "file", "a file"
    for kind, test, words in SPECIAL:
        if test(mode):
            return kind, words
    return "special", "a special file"


def _stat_failure(name: str, exc: OSError) -> str:
    """The sentence for a path that cannot even be examined; the OS text is logged."""
    log.info("stat %s: %s", name, exc)
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return (f"{name} does not exist; it may have been moved, renamed or deleted — "
                "choose it again.")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (f"{name} cannot be read: you do not have permission to open it (or the "
                "folder it is in); check its permissions.")
    if exc.errno == errno.ELOOP:
        return f"{name} is a link that points to itself in a loop; choose the real file."
    if exc.errno == errno.ENAMETOOLONG:
        return f"{name} has a path too long for this system; move it to a shorter path."
    return (f"{name} cannot be examined by the operating system right now; check that "
            "the disk or network share it is on is available.")


def check_path(path: str | Path, *, folders: bool = False, what: str = "file",
               error: type[MechscopeError] = ModelLoadError) -> os.stat_result:
    """``os.stat(path)`` if ``path`` is a regular file (or, with ``folders``, a folder).

    Raises ``error`` (one sentence naming the file) for anything else — without ever
    opening it. ``what`` names the file the user should pick instead ("model file").
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise error(_stat_failure(path.name or str(path), exc)) from None
    kind, words = kind_of(info.st_mode)
    if kind == "file" or (folders and kind == "folder"):
        return info
    name = path.name or str(path)
    if kind == "folder":
        raise error(f"{name} is a folder, not a file; choose the {what} inside it.")
    allowed = "regular files and folders" if folders else "regular files"
    raise error(f"{name} is {words}, not a file; Mechscope opens {allowed} only.")


def open_regular(path: str | Path, *, what: str = "file",
                 error: type[MechscopeError] = ModelLoadError) -> BinaryIO:
    """Open ``path`` for reading, checked before and after opening.

    ``O_NONBLOCK`` makes opening a pipe return at once instead of waiting for a writer;
    it changes nothing for a regular file.
    """
    check_path(path, what=what, error=error)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    name = Path(path).name
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise error(_stat_failure(name, exc)) from None
    try:
        kind, words = kind_of(os.fstat(fd).st_mode)
        if kind != "file":
            raise error(f"{name} is {words}, not a file; Mechscope opens regular files "
                        "only.")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
