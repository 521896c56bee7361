"""What a timing run measures: the grid of dimensions D, the methods and the measurement settings.

Every setting that the Timing page, its URL and ``python -m flowlab bench`` share is a field of
``flowlab.settings.TIMING`` (bounds, messages) with its default in ``flowlab.presets.TIMING``; this module only adds the
log-spaced default grid and what the engine alone needs (memory limit, slope-fit window, λ)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import presets
from ..gradients import METHODS, by_cost, check_method
from ..settings import TIMING, Invalid
from ..system import platform_name

DIMS, METHODS_FIELD = TIMING["dims"], TIMING["methods"]
MIN_DIM, MAX_DIM = int(DIMS.lo), int(DIMS.hi)
ALL_METHODS = by_cost(METHODS)  # a full run (the command line's default): every method, cheapest first
FIT_RANGE = presets.TIMING_FIT_RANGE
CHECKED = ("batch", "layers", "repeats", "cap", "seed")  # plain fields checked by the schema as they are


def default_dims(max_dim: int = 4096, min_dim: int = 64, per_octave: int = 2) -> tuple[int, ...]:
    """Log-spaced grid from ``min_dim`` to ``max_dim`` with ``per_octave`` points per doubling, rounded to multiples
    of 8 above 64 (64, 88, 128, 184, 256, 360, 512, 728, 1024, 1448, 2048, 2896, 4096 by default)."""
    if not (MIN_DIM <= int(min_dim) <= int(max_dim) <= MAX_DIM):
        raise ValueError(f"The grid needs {MIN_DIM} <= smallest D <= largest D <= {MAX_DIM}, got {min_dim} and "
                         f"{max_dim}.")
    if int(per_octave) < 1:
        raise ValueError(f"Use at least one point per doubling of D, got {per_octave}.")
    n = int(round(math.log2(max_dim / min_dim) * per_octave))
    raw = [min_dim * 2.0 ** (k / per_octave) for k in range(n + 1)] + [float(max_dim)]
    out = sorted({int(max_dim) if abs(v - max_dim) < 1e-6 else (int(round(v / 8) * 8) if v > 64 else int(round(v)))
                  for v in raw if v <= max_dim + 1e-6})
    return tuple(out)


def default_max_dim(platform: str | None = None) -> int:
    """4096 on CPU; on an accelerator the memory guard decides where each method stops."""
    return presets.TIMING_MAX_DIM["cpu" if (platform or platform_name()) == "cpu" else "accelerator"]


# Named grids of the Timing page: the live default (D ≥ 1024), the recorded CPU grid, a large accelerator grid.
CUSTOM = "custom"
GRIDS = {f"live: {presets.TIMING_LIVE_DIMS[0]} – {presets.TIMING_LIVE_DIMS[-1]}": presets.TIMING_LIVE_DIMS,
         "recorded CPU: 64 – 4096": default_dims(default_max_dim("cpu")),
         f"large: 128 – {default_max_dim('gpu')} (GPU)": default_dims(default_max_dim("gpu"), 128, 1)}


def grid_name(dims) -> str:
    """The name in ``GRIDS`` of exactly this grid, else ``CUSTOM``."""
    return next((name for name, grid in GRIDS.items() if tuple(grid) == tuple(dims)), CUSTOM)


def dims_text(dims) -> str:
    """(64, 128) -> '64, 128': how a grid is written in a text box."""
    return ", ".join(str(int(d)) for d in dims)


def parse_dims(text) -> tuple[int, ...]:
    """'64, 128 256' or [64, 128] -> (64, 128, 256), sorted and de-duplicated, within the bounds of the schema's
    ``dims`` field; a ValueError names the first bad item."""
    if isinstance(text, str):
        parts = [p for p in text.replace(",", " ").replace(";", " ").split() if p]
    else:
        parts = list(text)
    if not parts:
        raise ValueError("Give at least one dimension D, for example 64, 128, 256.")
    dims = set()
    for p in parts:
        try:
            (v,) = DIMS.convert([p])
        except Invalid:
            raise ValueError(f"Dimension {p!r} is not a whole number; write the grid like 64, 128, 256.") from None
        if DIMS.out_of_bounds((v,)):
            raise ValueError(f"Dimension {v} is out of range: use {MIN_DIM} <= D <= {MAX_DIM}.")
        dims.add(v)
    if DIMS.out_of_bounds(tuple(dims)):
        raise ValueError(f"Give at most {DIMS.max_items} dimensions, got {len(dims)}.")
    return tuple(sorted(dims))


def parse_methods(text) -> tuple[str, ...]:
    """'exact,relative' or a list (names or aliases) -> the schema's methods in run order (cheapest first)."""
    parts = [p.strip() for p in (text.replace(" ", ",").split(",") if isinstance(text, str) else text)]
    parts = [p for p in parts if p]
    choices = METHODS_FIELD.options()
    if not parts:
        raise ValueError(f"Choose at least one gradient method: {', '.join(by_cost(choices))}.")
    return METHODS_FIELD.order({check_method(p, choices) for p in parts})


@dataclass(frozen=True)
class BenchConfig:
    """What to measure.  ``dims`` .. ``seed`` are the fields of ``settings.TIMING`` (``cap``: the per-point time
    budget in seconds, compile + warm-up + timed calls); ``mem_limit`` the largest compiled footprint in bytes allowed
    to run (None: automatic), ``fit_range`` the D window of the headline slope fit, ``lam`` the self-normalizing
    reconstruction weight (timing does not depend on it).  Defaults: the log-spaced grid, every method, and the
    preset's numbers."""

    dims: tuple = field(default_factory=default_dims)
    methods: tuple = ALL_METHODS
    batch: int = presets.TIMING["batch"]
    layers: int = presets.TIMING["layers"]
    repeats: int = presets.TIMING["repeats"]
    cap: float = presets.TIMING["cap"]
    mem_limit: int | None = None
    fit_range: tuple = FIT_RANGE
    seed: int = presets.TIMING["seed"]
    lam: float = presets.DEFAULT.lam  # Keller et al.'s λ (eq. 3); it does not change the timing

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "dims", parse_dims(self.dims))
        set_(self, "methods", parse_methods(self.methods))
        for key in CHECKED:
            set_(self, key, TIMING[key].check(getattr(self, key)))
        if self.mem_limit is not None and not int(self.mem_limit) > 0:
            raise ValueError(f"The memory limit must be a positive number of bytes, got {self.mem_limit}.")
        lo, hi = (float(v) for v in self.fit_range)
        if not 0 < lo < hi:
            raise ValueError(f"The slope-fit window needs 0 < low < high, got {self.fit_range}.")
        set_(self, "fit_range", (lo, hi))

    def settings(self) -> dict:
        """The schema's settings of this run (what the page's URL and widgets hold)."""
        return {k: getattr(self, k) for k in TIMING.keys}
