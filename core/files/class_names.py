"""Class names of the user's own data: a ``classes.txt`` beside the data file (or in
the image folder), one name per line, in the order of the model's outputs.

The file is the user's, so it is read like any other of their files: never opened if
it is no regular file, size-limited, and refused with a sentence if it is not UTF-8
text, has an empty name in the middle or a name twice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from core.errors import InputError
from core.files.guard import check_path, open_regular

CLASSES_FILE = "classes.txt"
#: A vocabulary of 200k names fits; a classes.txt larger than this is no list of names.
MAX_CLASSES_BYTES = 4 * 1024 * 1024
MAX_CLASSES = 200_000


def classes_file(data: Path) -> Optional[Path]:
    """The ``classes.txt`` that goes with ``data`` (inside a folder, beside a file), or
    ``None`` if there is none."""
    data = Path(data)
    candidate = data / CLASSES_FILE if data.is_dir() else data.with_name(CLASSES_FILE)
    return candidate if os.path.lexists(candidate) else None


def read_classes(path: Path) -> tuple[str, ...]:
    """The names in ``path``, one per line (trailing empty lines and spaces dropped)."""
    path = Path(path)
    where = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
    info = check_path(path, what="classes.txt", error=InputError)
    if info.st_size > MAX_CLASSES_BYTES:
        raise InputError(f"{where} is larger than {MAX_CLASSES_BYTES >> 20} MB, too large "
                         "to be a list of class names (one name per line).")
    with open_regular(path, what="classes.txt", error=InputError) as handle:
        raw = handle.read(MAX_CLASSES_BYTES + 1)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{where} is not UTF-8 text; save it as plain text with one class "
                         "name per line.") from None
    if "\x00" in text:
        raise InputError(f"{where} holds NUL bytes, so it is not a text file of class "
                         "names; save it as plain text with one name per line.")
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise InputError(f"{where} is empty; write one class name per line, in the order "
                         "of the model's outputs.")
    if len(names) > MAX_CLASSES:
        raise InputError(f"{where} lists more than {MAX_CLASSES:,} names.")
    if "" in names:
        raise InputError(f"{where}: line {names.index('') + 1} is empty; every line "
                         "names one class, in the order of the model's outputs.")
    seen: dict[str, int] = {}
    for number, name in enumerate(names, 1):
        if name in seen:
            raise InputError(f"{where}: {name!r} is on line {seen[name]} and on line "
                             f"{number}; every class needs its own name.")
        seen[name] = number
    return tuple(names)


def check_count(names: tuple[str, ...], n_outputs: Optional[int], where: str) -> None:
    """Refuse a list of names that does not name every output of the model once."""
    if n_outputs is not None and len(names) != n_outputs:
        raise InputError(f"{where} has {len(names)} names, but the model puts out "
                         f"{n_outputs} scores; list one name per score, in the order "
                         "of the outputs.")
