"""CSV files FlowLab reads and writes: uploaded points (``parse_points_csv``, ``check_points``) and training curves
(``curves_csv``).  ``flowlab.files`` re-exports them next to the model files.

An uploaded CSV may come from anyone: every problem is a ValueError of one sentence naming the line, and the points
must be trainable in float32 once standardised."""
from __future__ import annotations

import math

import numpy as np

from .schema import shown

F32_MAX = float(np.finfo(np.float32).max)  # FlowLab computes in float32: no value read may exceed its range


# ---- uploaded points ----------------------------------------------------------------------------------------
MAX_CSV_ROWS = 100_000
MIN_CSV_ROWS = 10
MIN_DISTINCT_POINTS = 10  # after standardising in float32
MIN_SPREAD = 1e-6  # a column's std: the floor Norm.fit puts on the scale (a smaller spread is not standardised)
MIN_REL_SPREAD = 1e-6  # ... and relative to the column's largest |value|: below it float32 rounding is the spread
MIN_SV_RATIO = 1e-3  # smaller / larger singular value of the standardised points: below it they lie on a line
MAX_ROBUST_Z = 1e6  # |x - median| / (1.4826 MAD): one point this far leaves the others one point after standardising


def _split(line: str, delim: str | None) -> list[str]:
    return [c.strip() for c in (line.split(delim) if delim else line.split())]


def _float(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def parse_points_csv(raw, max_rows: int = MAX_CSV_ROWS, min_rows: int = MIN_CSV_ROWS) -> np.ndarray:
    """Parse a CSV of 2-D points (two numeric columns, optional one-line header; comma, semicolon, tab or space
    separated) into a float64 (N, 2) array.  Any problem raises ValueError with one precise sentence naming the row;
    the points must also be trainable in float32 once standardised (``check_points``)."""
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = bytes(raw).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError("The file is not a UTF-8 text file; upload a CSV with two numeric columns x, y.") from None
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(str(raw).splitlines())]
    lines = [(i, ln) for i, ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise ValueError("The file is empty; upload a CSV with two numeric columns x, y.")
    first = lines[0][1]
    delim = next((d for d in (",", ";", "\t") if d in first), None)
    head = _split(first, delim)
    if any(_float(c) is None for c in head if c):
        if len(head) != 2:
            raise ValueError(f"The header (line {lines[0][0]}) has {len(head):,} columns; expected exactly 2 (x, y).")
        lines = lines[1:]
        if not lines:
            raise ValueError("The file has a header but no data rows.")
    if len(lines) > max_rows:
        raise ValueError(f"The file has {len(lines):,} data rows; the limit is {max_rows:,}.")
    if len(lines) < min_rows:
        raise ValueError(f"The file has only {len(lines)} data rows; at least {min_rows} points are needed.")
    out = np.empty((len(lines), 2), np.float64)
    for r, (lineno, ln) in enumerate(lines):
        cells = _split(ln, delim)
        if len(cells) != 2:
            raise ValueError(f"Line {lineno} has {len(cells):,} columns; expected exactly 2 (x, y).")
        for c, cell in enumerate(cells):
            v = _float(cell)
            if v is None:
                raise ValueError(f"Line {lineno}, column {c + 1}: {shown(cell)} is not a number.")
            if not math.isfinite(v):
                raise ValueError(f"Line {lineno}, column {c + 1} holds {shown(cell)}; NaN and infinite values are not "
                                 "allowed.")
            if abs(v) > F32_MAX:
                raise ValueError(f"Line {lineno}, column {c + 1} holds {shown(cell)}, beyond float32's range "
                                 "(±3.4e38) in which FlowLab trains.")
            out[r, c] = v
    check_points(out, [i for i, _ in lines])
    return out


def check_points(x: np.ndarray, linenos=None):
    """ValueError (one sentence) unless the (N, 2) points can be standardised (as Norm.fit) and trained on in float32:
    each column spreads, no point dominates the mean and std (MAX_ROBUST_Z), and the standardised float32 points are
    finite, at least MIN_DISTINCT_POINTS distinct and not on a line.  ``linenos`` name the points' lines."""
    x = np.asarray(x, np.float64)
    line = (lambda i: f"Line {linenos[i]}") if linenos is not None else (lambda i: f"Point {i + 1}")
    for c, name in enumerate("xy"):
        col = x[:, c]
        s, size = float(col.std()), float(np.max(np.abs(col)))
        if not (s > MIN_SPREAD and s > MIN_REL_SPREAD * size):
            raise ValueError(f"All points share (nearly) the same {name} (spread {s:.2g} around {col.mean():.6g}); "
                             f"each column must spread by more than {MIN_SPREAD:g} and a millionth of its values.")
        dev = np.abs(col - np.median(col))
        ref = 1.4826 * float(np.median(dev) or np.median(dev[dev > 0]))  # MAD; of the points off the median if 0
        i = int(np.argmax(dev))
        if dev[i] > MAX_ROBUST_Z * ref:
            raise ValueError(f"{line(i)} holds {name} = {col[i]:.4g}, {dev[i] / ref:.1e} typical deviations from the "
                             "median; such an outlier dominates the standardisation (the other points collapse "
                             "together), so remove it or fix its units.")
    shift, scale = x.mean(0).astype(np.float32), np.maximum(x.std(0), MIN_SPREAD).astype(np.float32)  # as Norm.fit
    with np.errstate(over="ignore", invalid="ignore"):
        h = (x.astype(np.float32) - shift) / scale
    ok = np.all(np.isfinite(h), axis=1)
    if not np.all(ok):
        i = int(np.argmin(ok))
        raise ValueError(f"{line(i)}: standardising the points overflows float32 (they span more than ±3.4e38); "
                         "rescale the data.")
    n = len(np.unique(h, axis=0))
    if n < MIN_DISTINCT_POINTS:
        raise ValueError(f"Only {n} of the points are distinct (in float32); a density needs at least "
                         f"{MIN_DISTINCT_POINTS} different points.")
    sv = np.linalg.svd(h.astype(np.float64) - h.mean(0), compute_uv=False)
    if not sv[-1] > MIN_SV_RATIO * sv[0]:
        raise ValueError("The points lie on a line; a 2-D density needs them to spread in two directions.")


def curves_csv(history: dict, evals: dict) -> str:
    """Training curves as CSV text: one row per optimiser step (loss, grad_norm, lr, ...) with the end-of-chunk
    evaluation columns (test_nll, kl, and inv_err for SNF) filled on the step where they were measured, else empty."""
    history = {k: list(history[k]) for k in history}  # plain lists (a Series builds each column on access)
    evals = {k: list(evals[k]) for k in evals}
    cols = [k for k in history if k != "step"]
    ev_cols = [k for k in ("test_nll", "kl", "inv_err") if k in evals]
    ev_at = {int(s): i for i, s in enumerate(evals.get("step", []))}
    rows = ["step," + ",".join(cols + ev_cols)]
    steps = list(history.get("step", []))
    seen = set()

    def fmt(v):
        v = float(v)
        return "" if not np.isfinite(v) else repr(v)

    for j, s in enumerate(steps):
        s = int(s)
        cells = [fmt(history[k][j]) for k in cols]
        i = ev_at.get(s)
        cells += [fmt(evals[k][i]) if i is not None else "" for k in ev_cols]
        seen.add(s)
        rows.append(f"{s}," + ",".join(cells))
    for s, i in ev_at.items():  # evaluations at steps with no applied update (e.g. before any step)
        if s not in seen:
            rows.append(f"{s}," + ",".join([""] * len(cols) + [fmt(evals[k][i]) for k in ev_cols]))
    return "\n".join(rows) + "\n"
