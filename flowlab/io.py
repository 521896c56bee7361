"""Model files: one ``.npz`` (no pickle) holding the arrays and a JSON string with the settings.

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
