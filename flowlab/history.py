"""Bounded training histories: columns of numbers, one row per optimiser step or per evaluation, thinned as they grow.

A ``Series`` keeps every ``stride``-th row offered to it; when it holds more than ``cap`` rows it drops every other
row and doubles the stride, so a run of any length holds at most ``cap`` rows, spread evenly over the whole run
(memory stays flat over hours of training).  The newest row is always readable (``latest``, and ``column`` ends with
it), so the current loss or KL is never thinned away."""
from __future__ import annotations

from typing import Mapping

import numpy as np

DEFAULT_CAP = 4096


class Series:
    """Rows of named float columns (one of them usually ``step``), bounded by ``cap``."""

    def __init__(self, cap: int = DEFAULT_CAP, columns: tuple = ()):
        if int(cap) < 2:
            raise ValueError(f"A series must hold at least 2 rows, got cap={cap}.")
        self.cap = int(cap)
        self.stride = 1
        self.offered = 0  # rows offered so far (kept or not)
        self._columns = tuple(columns)
        self._cols: dict[str, list] = {c: [] for c in columns}
        self._idx: list[int] = []  # the offered index of each kept row
        self._n = 0
        self._latest: dict | None = None

    # ---- writing --------------------------------------------------------------------------------------------------
    def append(self, row: Mapping[str, float]):
        self.extend({k: [v] for k, v in row.items()})

    def extend(self, block: Mapping[str, object]):
        """Offer the rows of ``block`` (equal-length columns); the kept ones are every ``stride``-th."""
        block = {k: np.asarray(v, np.float64).ravel() for k, v in block.items()}
        n = len(next(iter(block.values()))) if block else 0
        for k in block:
            if k not in self._cols:
                self._cols[k] = [float("nan")] * self._n  # a column that starts late (e.g. SNF's inv_err)
        if n == 0:
            return
        idx = np.flatnonzero((self.offered + np.arange(n)) % self.stride == 0)
        for k, col in self._cols.items():
            vals = block.get(k)
            col.extend([float("nan")] * len(idx) if vals is None else vals[idx].tolist())
        self._idx.extend((self.offered + idx).tolist())
        self._n += len(idx)
        self.offered += n
        self._latest = {k: float(v[-1]) for k, v in block.items()}
        while self._n > self.cap:
            for k in self._cols:
                self._cols[k] = self._cols[k][::2]
            self._idx = self._idx[::2]
            self._n = len(self._idx)
            self.stride *= 2

    def truncate_after(self, step: float, key: str = "step"):
        """Drop the rows whose ``key`` is beyond ``step`` (a rollback into the past)."""
        if key not in self._cols:
            return
        keep = [i for i, s in enumerate(self._cols[key]) if s <= step]
        for k in self._cols:
            self._cols[k] = [self._cols[k][i] for i in keep]
        self._idx = [self._idx[i] for i in keep]
        self._n = len(keep)
        if self._latest is not None and self._latest.get(key, -np.inf) > step:
            self._latest = {k: v[-1] for k, v in self._cols.items()} if self._n else None
            self.offered = self._idx[-1] + 1 if self._n else 0

    def clear(self):
        self.__init__(self.cap, self._columns)

    # ---- reading --------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    def __contains__(self, key: str) -> bool:
        return key in self._cols

    def keys(self):
        return list(self._cols)

    def __iter__(self):
        return iter(self._cols)

    @property
    def latest(self) -> dict | None:
        """The newest row offered, kept or not."""
        return None if self._latest is None else dict(self._latest)

    def _needs_latest(self) -> bool:
        """True when the newest row offered was not kept (it is then appended when reading)."""
        return self._latest is not None and (not self._idx or self._idx[-1] != self.offered - 1)

    def column(self, key: str) -> list:
        """The kept values of ``key``, ending with the newest row's value."""
        col = list(self._cols.get(key, []))
        if self._needs_latest():
            col.append(self._latest.get(key, float("nan")))
        return col

    def __getitem__(self, key: str) -> list:
        if key not in self._cols:
            raise KeyError(key)
        return self.column(key)

    def get(self, key: str, default=None):
        return self.column(key) if key in self._cols else default

    def items(self):
        return [(k, self.column(k)) for k in self._cols]

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, np.float64) for k, v in self.items()}

    def nbytes(self) -> int:
        """Approximate memory held: 8 bytes per value plus list overhead."""
        return sum(32 * len(c) for c in self._cols.values())


class Frames:
    """A bounded, evenly thinned list of (step, item) — e.g. the learned density at chunk ends, for an animation: at
    most ``cap`` items, every ``stride``-th offered, the stride doubling when full (as in ``Series``)."""

    def __init__(self, cap: int = 96):
        if int(cap) < 2:
            raise ValueError(f"Keep at least 2 frames, got cap={cap}.")
        self.cap, self.stride, self.offered = int(cap), 1, 0
        self.items: list = []

    def add(self, step: int, item):
        if self.offered % self.stride == 0:
            self.items.append((int(step), item))
            if len(self.items) > self.cap:
                self.items = self.items[::2]
                self.stride *= 2
        self.offered += 1

    def clear(self):
        self.__init__(self.cap)

    def __len__(self) -> int:
        return len(self.items)
