"""Read a CSV of examples (the input's numbers, then the label) within fixed limits.

The ``csv`` module holds a whole line in memory and stops at fields over 131,072
characters with its own error; so lines are handed to it only up to a length that a
row of this model's inputs can need, and rows are counted as they come.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import InputError
from core.files.arrays import MAX_ARRAY_BYTES
from core.files.guard import open_regular
from core.jobs import CancelToken, report

log = logging.getLogger(__name__)

MAX_ROWS = 200_000
#: No number needs more characters than this ("-1.2345678901234567e-308" has 24).
MAX_FIELD_CHARS = 40


def _lines(handle, name: str, limit: int):
    number = 0
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit:
            raise InputError(f"{name}, line {number}, is longer than {limit:,} characters, "
                             "more than a row of this model's inputs needs; check that "
                             "it is the right file.")
        yield line


def _numbers(row: list[str]) -> list[float] | None:
    try:
        return [float(v) for v in row]
    except ValueError:
        return None


def read_csv(path: Path, n_inputs: int,
             token: Optional[CancelToken] = None) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (N, width - 1) float32, labels (N,) float64) of a CSV whose rows each hold
    up to ``n_inputs`` numbers and a label; a first row of names is skipped."""
    name = path.name
    if path.stat().st_size > MAX_ARRAY_BYTES:
        raise InputError(f"{name} is larger than {MAX_ARRAY_BYTES // 1024 ** 2} MB.")
    inputs, labels, widths = [], [], set()
    line_limit = (n_inputs + 1) * MAX_FIELD_CHARS + 2
    with open_regular(path, what="data file", error=InputError) as raw, \
            io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") as text:
        reader = csv.reader(_lines(text, name, line_limit))
        try:
            for row in reader:
                number = reader.line_num
                if number % 2000 == 0:  # a big file's load can be cancelled
                    report(token, 0.0, f"reading {name}: row {number:,}")
                if not row or not any(v.strip() for v in row):
                    continue
                if len(row) > n_inputs + 1:
                    raise InputError(f"{name}, line {number}, has {len(row):,} values, but "
                                     f"each line should hold the model's {n_inputs:,} input"
                                     " numbers and then a label.")
                values = _numbers(row)
                if values is None:
                    if number == 1:
                        continue  # a header
                    bad = next(v for v in row if _numbers([v]) is None)
                    raise InputError(f"{name}, line {number}: {bad[:MAX_FIELD_CHARS]!r} is "
                                     "not a number.")
                if len(inputs) >= MAX_ROWS:
                    raise InputError(f"{name} has more than {MAX_ROWS:,} rows; Mechscope "
                                     "evaluates on up to that many examples at once.")
                widths.add(len(row))
                with np.errstate(over="ignore"):  # inf, refused with the other inputs
                    inputs.append(np.asarray(values[:-1], np.float32))
                labels.append(values[-1])
        except csv.Error as exc:
            log.info("csv %s: %s", name, exc)
            what = ("a value far too long to be a number" if "field larger" in str(exc)
                    else "text that is not plain comma-separated values (a quote that is "
                    "never closed, or a NUL byte)")
            raise InputError(f"{name}, line {reader.line_num}, holds {what}; save it again "
                             "as plain comma-separated numbers.") from None
    if not inputs:
        raise InputError(f"{name} has no rows of numbers.")
    if len(widths) != 1:
        raise InputError(f"{name}: rows have different lengths ({sorted(widths)}); every "
                         "line needs the same number of values.")
    return np.stack(inputs), np.asarray(labels, np.float64)
