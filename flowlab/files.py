"""Files FlowLab reads and writes.  Model files: one ``.npz`` (no pickle) holding the arrays and a JSON string with the settings.

Arrays: ``W`` (L, D, D), ``b`` (L, D), optional ``R`` (L, D, D) (self-normalizing flows), optional ``shift`` (D,)
and ``scale`` (D,) (the standardisation h_0 = (x - shift) / scale).  Key ``config``: a 0-d unicode array holding JSON
with at least ``{"format": "flowlab-model", "version": 1, "activation": {"name", "alpha", "beta"}}`` plus the method
and training settings.  Loading uses ``np.load(allow_pickle=False)`` and checks every shape.
"""
from __future__ import annotations

import io as _io
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from .activations import make_activation
from .flow import FlowSpec, Norm

FORMAT = "flowlab-model"
VERSION = 1


def model_bytes(spec: FlowSpec, params: dict, norm: Norm | None = None, config: dict | None = None) -> bytes:
    """Serialise a model to the bytes of an .npz file."""
    arrays = {"W": np.asarray(params["W"], np.float32), "b": np.asarray(params["b"], np.float32)}
    if "R" in params:
        arrays["R"] = np.asarray(params["R"], np.float32)
    if norm is not None:
        arrays["shift"] = np.asarray(norm.shift, np.float32)
        arrays["scale"] = np.asarray(norm.scale, np.float32)
    meta = {"format": FORMAT, "version": VERSION,
            "activation": {"name": spec.activation.name, "alpha": spec.activation.alpha, "beta": spec.activation.beta},
            **(config or {})}
    meta["dim"], meta["layers"] = int(spec.dim), int(spec.layers)
    buf = _io.BytesIO()
    np.savez(buf, config=np.asarray(json.dumps(meta)), **arrays)
    return buf.getvalue()


def save_model(path, spec: FlowSpec, params: dict, norm: Norm | None = None, config: dict | None = None) -> Path:
    path = Path(path)
    path.write_bytes(model_bytes(spec, params, norm, config))
    return path


def load_model(source) -> tuple[FlowSpec, dict, Norm | None, dict]:
    """Load (spec, params, norm, config) from a path, bytes or a binary file object; ValueError if malformed."""
    if isinstance(source, (bytes, bytearray)):
        source = _io.BytesIO(source)
    try:
        with np.load(source, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
    except ValueError as e:
        raise ValueError(f"Not a FlowLab model file: {e}") from None
    except Exception as e:  # zipfile.BadZipFile, OSError, EOFError ...
        raise ValueError(f"Not a FlowLab model file (expected an .npz archive): {e}") from None
    for key in ("W", "b", "config"):
        if key not in files:
            raise ValueError(f"Not a FlowLab model file: array {key!r} is missing.")
    try:
        meta = json.loads(str(files["config"]))
    except json.JSONDecodeError as e:
        raise ValueError(f"The model file's config is not valid JSON: {e}") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"Not a FlowLab model file: format is {meta.get('format')!r}, expected {FORMAT!r}.")
    W, b = files["W"], files["b"]
    if W.ndim != 3 or W.shape[1] != W.shape[2]:
        raise ValueError(f"W must have shape (L, D, D), got {W.shape}.")
    L, D = W.shape[0], W.shape[1]
    if b.shape != (L, D):
        raise ValueError(f"b must have shape {(L, D)} to match W, got {b.shape}.")
    if "R" in files and files["R"].shape != W.shape:
        raise ValueError(f"R must have the same shape as W {W.shape}, got {files['R'].shape}.")
    arrays = [W, b] + ([files["R"]] if "R" in files else [])
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ValueError("The model file contains NaN or infinite weights.")
    act = meta.get("activation", {})
    spec = FlowSpec(int(D), int(L), make_activation(act.get("name", "smooth_leaky_relu"), act.get("alpha"),
                                                    act.get("beta")))
    params = {"W": jnp.asarray(W, jnp.float32), "b": jnp.asarray(b, jnp.float32)}
    if "R" in files:
        params["R"] = jnp.asarray(files["R"], jnp.float32)
    norm = None
    if "shift" in files or "scale" in files:
        if "shift" not in files or "scale" not in files:
            raise ValueError("The standardisation needs both 'shift' and 'scale'.")
        if files["shift"].shape != (D,) or files["scale"].shape != (D,):
            raise ValueError(f"shift and scale must have shape ({D},).")
        if np.any(files["scale"] <= 0):
            raise ValueError("scale must be positive.")
        norm = Norm(jnp.asarray(files["shift"], jnp.float32), jnp.asarray(files["scale"], jnp.float32))
    return spec, params, norm, meta


# ---- uploaded points (CSV) ----------------------------------------------------------------------------------------
MAX_CSV_ROWS = 100_000
MIN_CSV_ROWS = 10


def _split(line: str, delim: str | None) -> list[str]:
    return [c.strip() for c in (line.split(delim) if delim else line.split())]


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def parse_points_csv(raw, max_rows: int = MAX_CSV_ROWS, min_rows: int = MIN_CSV_ROWS) -> np.ndarray:
    """Parse a CSV of 2-D points (two numeric columns, optional one-line header; comma, semicolon, tab or space
    separated) into a float64 (N, 2) array.  Any problem raises ValueError with one precise sentence naming the row."""
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
    if not all(_is_number(c) for c in head if c):
        if len(head) != 2:
            raise ValueError(f"The header (line {lines[0][0]}) has {len(head)} columns; expected exactly 2 (x, y).")
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
            raise ValueError(f"Line {lineno} has {len(cells)} columns; expected exactly 2 (x, y).")
        for c, cell in enumerate(cells):
            try:
                v = float(cell)
            except ValueError:
                shown = cell if len(cell) <= 20 else cell[:20] + "…"
                raise ValueError(f"Line {lineno}, column {c + 1}: {shown!r} is not a number.") from None
            if not np.isfinite(v):
                raise ValueError(f"Line {lineno}, column {c + 1} holds {cell!r}; NaN and infinite values are not "
                                 "allowed.")
            out[r, c] = v
    if np.any(out.std(axis=0) == 0):
        raise ValueError("All points share the same x or the same y; the data must spread in both directions.")
    return out


def curves_csv(history: dict, evals: dict) -> str:
    """Training curves as CSV text: one row per optimiser step (loss, grad_norm, lr, ...) with the end-of-chunk
    evaluation columns (test_nll, kl, and inv_err for SNF) filled on the step where they were measured and empty elsewhere."""
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
