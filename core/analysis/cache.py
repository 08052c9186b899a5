"""A byte-bounded activation cache: the most common complaint in every peer's tracker
is memory, so the cache has a budget, evicts oldest first, and says what it dropped."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Optional

import numpy as np

log = logging.getLogger(__name__)


class ActivationCache:
    """``key -> ndarray`` holding at most ``max_bytes`` in total.

    An array larger than the whole budget is not stored; :attr:`dropped` records it.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self.dropped: list[str] = []

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._items.values())

    def get(self, key: str) -> Optional[np.ndarray]:
        arr = self._items.get(key)
        if arr is not None:
            self._items.move_to_end(key)
        return arr

    def put(self, key: str, arr: np.ndarray) -> None:
        if arr.nbytes > self.max_bytes:
            self.dropped.append(key)
            log.info("not caching %s: %d bytes exceed the %d-byte budget",
                     key, arr.nbytes, self.max_bytes)
            return
        self._items[key] = arr
        self._items.move_to_end(key)
        while self.nbytes > self.max_bytes:
            old, _ = self._items.popitem(last=False)
            self.dropped.append(old)
            log.info("evicted %s from the activation cache", old)

    def clear(self) -> None:
        self._items.clear()
