"""Files FlowLab reads and writes: model files here; uploaded CSVs of points and the curves CSV in
``flowlab.csvfiles`` (re-exported).

Model file: one ``.npz`` (a zip of ``.npy`` members, no pickle): ``W`` (L, D, D), ``b`` (L, D), optional ``R`` (L, D,
D) (self-normalizing flows), ``A`` (L-1, D, n) for a learned activation (its n parameters per unit, and only then),
optional ``shift`` and ``scale`` (D,) (h_0 = (x - shift) / scale) and ``config``, a 0-d string array holding JSON:
``{"format": "flowlab-model", "version": 2, "activation": {"name", "alpha", "beta"}}`` plus the method and training
settings.  Version 2 puts ``hyper.lam`` on Keller et al.'s scale (eq. 3): version 1 files stored twice that value, so
``load_model`` halves their ``hyper.lam`` and returns the config upgraded (``version`` 2, ``upgraded_from`` 1).

A model file may come from anyone, so ``load_model`` reads it member by member (zipfile, then numpy's .npy header
parser) and refuses with a ValueError of one sentence, checking sizes before any data is unpacked:
* the archive at most ``MAX_ARCHIVE_BYTES``, its directory at most ``MAX_DIRECTORY_BYTES`` (checked before zipfile
  builds an object per listed member); only the seven members above, each once, as ``.npy``, not encrypted;
* each member's declared unpacked size (``ZipInfo.file_size``; zipfile unpacks no more) at most ``MEMBER_BYTES``,
  what the largest model needs (L <= ``MAX_MODEL_LAYERS``, D <= ``MAX_MODEL_DIM``, float64, ``MAX_CONFIG_CHARS`` of
  JSON): the total is at most their sum, ``MAX_MODEL_BYTES``;
* each header (<= ``MAX_HEADER_CHARS``) before its data: real floats only (float16/32/64, either byte order; no object,
  str, complex, structured, datetime or int), shapes within the caps and consistent with W;
* values: finite within float32's range (FlowLab computes in float32), scale > 0, each W_k invertible in float32
  (condition number <= ``MAX_COND``, log|det W_k| > ``MIN_LOGDET_PER_DIM`` · D), |A| <= ``MAX_ACTIVATION_PARAM``;
* config: a JSON object of <= ``MAX_CONFIG_CHARS`` characters nested <= ``MAX_CONFIG_DEPTH`` deep, the keys FlowLab
  reads type-checked (format, version, dim, layers, activation, density, method, steps).
"""
from __future__ import annotations

import io as _io
import json
import math
import os
import struct
import zipfile
from contextlib import contextmanager
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from numpy.lib import format as npy

from .activations import ACTIVATION_NAMES, MAX_PARAMS, Activation, make_activation
from .custom_densities import MAX_POINTS, MAX_SIDE, from_source
from .csvfiles import (F32_MAX, MAX_CSV_ROWS, MAX_ROBUST_Z, MIN_CSV_ROWS, MIN_DISTINCT_POINTS,  # noqa: F401
                       MIN_REL_SPREAD, MIN_SPREAD, MIN_SV_RATIO, check_points, curves_csv, parse_points_csv)
from .flow import FlowSpec, Norm
from .schema import shown

FORMAT = "flowlab-model"
VERSION = 2  # 2: λ on Keller et al.'s scale (version 1 stored 2λ), the A member of learned activations

MAX_MODEL_LAYERS = 256  # deeper than any flow FlowLab trains
MAX_MODEL_DIM = 64  # the densities are 2-D; the format allows any D within this cap
MAX_CONFIG_CHARS = 65_536
MAX_CONFIG_DEPTH = 8
MAX_HEADER_CHARS = 4096  # numpy writes ~128 characters
MAX_DIRECTORY_BYTES = 8192  # the zip's central directory: seven entries of about 100 bytes
MAX_COND = 1e7  # ~1/eps of float32: beyond it W_k^{-1} keeps no correct digit
MIN_LOGDET_PER_DIM = -30.0  # a geometric-mean singular value below e^-30 ≈ 1e-13: singular
# |θ| of a learned activation: e^50 ≈ 5e21 keeps its slopes, step heights and inverse finite in float32 for
# |x| <= 1e4, far beyond what training reaches (slopes of 1e-13 or steps 1e13 high are no longer a density model)
MAX_ACTIVATION_PARAM = 50.0
_FLOATS = ("float16", "float32", "float64")
_NDIM = {"W": 3, "b": 2, "R": 3, "A": 3, "shift": 1, "scale": 1, "raster": 2, "points": 2}
_ELEMENTS = {"W": MAX_MODEL_LAYERS * MAX_MODEL_DIM ** 2, "b": MAX_MODEL_LAYERS * MAX_MODEL_DIM,
             "R": MAX_MODEL_LAYERS * MAX_MODEL_DIM ** 2, "A": MAX_MODEL_LAYERS * MAX_MODEL_DIM * MAX_PARAMS,
             "shift": MAX_MODEL_DIM, "scale": MAX_MODEL_DIM, "raster": MAX_SIDE ** 2, "points": 2 * MAX_POINTS}
SOURCE_KINDS = {"text": "raster", "image": "raster", "raster": "raster", "points": "points"}  # kind -> its member
MEMBER_BYTES = {**{k: 8 * n + MAX_HEADER_CHARS + 16 for k, n in _ELEMENTS.items()},  # float64 + magic + header
                "config": 4 * MAX_CONFIG_CHARS + MAX_HEADER_CHARS + 16}  # numpy stores str as UTF-32
MAX_MODEL_BYTES = sum(MEMBER_BYTES.values())
MAX_ARCHIVE_BYTES = MAX_MODEL_BYTES + 4096  # + the zip's own headers
_KNOWN = ", ".join(list(MEMBER_BYTES)[:-1]) + " and config"
_LARGEST = f"the largest FlowLab model ({MAX_MODEL_LAYERS} layers of dimension {MAX_MODEL_DIM})"


class ModelFileError(ValueError):
    """A model file FlowLab refuses to read; the message is one sentence."""


def model_bytes(spec: FlowSpec, params: dict, norm: Norm | None = None, config: dict | None = None,
                density=None) -> bytes:
    """Serialise a model to the bytes of an .npz file (within the caps ``load_model`` reads).  ``density``: the
    user-made density it was trained on (``Density.source`` set by ``flowlab.custom_densities``), stored as its
    raster or drawn points plus ``config["density_source"]`` so the file can rebuild it; None for a toy."""
    if int(spec.layers) > MAX_MODEL_LAYERS or int(spec.dim) > MAX_MODEL_DIM:
        raise ValueError(f"A model file holds at most {MAX_MODEL_LAYERS} layers of dimension at most {MAX_MODEL_DIM}, "
                         f"got {spec.layers} layers of dimension {spec.dim}.")
    arrays = {"W": np.asarray(params["W"], np.float32), "b": np.asarray(params["b"], np.float32)}
    if "R" in params:
        arrays["R"] = np.asarray(params["R"], np.float32)
    if spec.activation.learnable:
        arrays["A"] = np.asarray(params["A"], np.float32)
        if not np.all(np.abs(arrays["A"]) <= MAX_ACTIVATION_PARAM):
            raise ValueError(f"The learned activation's parameters must lie within ±{MAX_ACTIVATION_PARAM:g} to be "
                             "saved, got NaN or a larger value.")
    if norm is not None:
        arrays["shift"] = np.asarray(norm.shift, np.float32)
        arrays["scale"] = np.asarray(norm.scale, np.float32)
    meta = {"format": FORMAT, "version": VERSION,
            "activation": {"name": spec.activation.name, "alpha": spec.activation.alpha, "beta": spec.activation.beta},
            **(config or {})}
    source = getattr(density, "source", None)
    if source:
        member = SOURCE_KINDS[source["kind"]]
        arrays[member] = np.asarray(source[member], np.float32)
        meta["density_source"] = {k: v for k, v in source.items() if k not in SOURCE_KINDS.values()}
    meta["dim"], meta["layers"] = int(spec.dim), int(spec.layers)
    text = json.dumps(meta)
    if len(text) > MAX_CONFIG_CHARS:
        raise ValueError(f"The model's settings take {len(text):,} characters of JSON; a model file holds at most "
                         f"{MAX_CONFIG_CHARS:,}.")
    buf = _io.BytesIO()
    np.savez(buf, config=np.asarray(text), **arrays)
    return buf.getvalue()


def save_model(path, spec: FlowSpec, params: dict, norm: Norm | None = None, config: dict | None = None,
               density=None) -> Path:
    path = Path(path)
    path.write_bytes(model_bytes(spec, params, norm, config, density))
    return path


def load_model(source) -> tuple[FlowSpec, dict, Norm | None, dict]:
    """Load (spec, params, norm, config) from a path, bytes or a binary file object.  A malformed file, or one beyond
    the caps in the module docstring, raises ValueError with one sentence."""
    with _open_archive(source) as zf:
        infos = _members(zf)
        meta, activation = _config(_read_npy(zf, infos["config"], "config"))
        arrays = {"W": _read_npy(zf, infos["W"], "W")}
        L, D = arrays["W"].shape[:2]
        _check_activation_member(activation, "A" in infos)
        want = {"b": (L, D), "R": (L, D, D), "A": (L - 1, D, activation.n_params)}
        for key in ("b", "R", "A", "shift", "scale"):
            if key in infos:
                arrays[key] = _read_npy(zf, infos[key], key, want.get(key, (D,)))
        member = _source_member(meta, set(infos))
        if member:
            arrays[member] = _read_npy(zf, infos[member], member)
    arrays = {k: _float32(k, a) for k, a in arrays.items()}
    _check_invertible(arrays["W"])
    if "A" in arrays and not np.all(np.abs(arrays["A"]) <= MAX_ACTIVATION_PARAM):
        raise ModelFileError(f"The model file's A holds activation parameters beyond ±{MAX_ACTIVATION_PARAM:g}; "
                             "FlowLab reads only those that keep the activation finite in float32.")
    for key, n in (("dim", D), ("layers", L)):
        if key in meta and (type(meta[key]) is not int or meta[key] != n):
            raise ModelFileError(f"The model file's config says {key}={shown(meta[key])}, but W holds {L} layers "
                                 f"of dimension {D}.")
    if ("shift" in arrays) != ("scale" in arrays):
        raise ModelFileError("The standardisation needs both 'shift' and 'scale'.")
    if "scale" in arrays and not np.all(arrays["scale"] > 0):
        raise ModelFileError("The model file's scale must be positive (in float32).")
    norm = Norm(jnp.asarray(arrays["shift"]), jnp.asarray(arrays["scale"])) if "scale" in arrays else None
    params = {k: jnp.asarray(arrays[k]) for k in ("W", "b", "R", "A") if k in arrays}
    if member:
        meta = {**meta, "density_source": {**meta["density_source"], member: arrays[member]}}
    return FlowSpec(int(D), int(L), activation), params, norm, meta


def saved_density(meta: dict):
    """The user-made density a model file was trained on (``load_model``'s meta), or None for a toy or none; a
    malformed one is refused with one sentence (the rebuilding checks of ``flowlab.custom_densities``)."""
    source = meta.get("density_source")
    if source is None:
        return None
    try:
        return from_source(source)
    except (ValueError, KeyError, TypeError) as e:
        raise ModelFileError(f"The model file's density could not be rebuilt: {e}") from None


def _source_member(meta: dict, members: set) -> str | None:
    """The member holding the user-made density that ``config.density_source`` describes (checked before any data
    is read: a known kind, a plot box of finite numbers, and exactly its own member present)."""
    source = meta.get("density_source")
    extra = members & set(SOURCE_KINDS.values())
    if source is None:
        if extra:
            raise ModelFileError(f"The model file holds {sorted(extra)[0]} but its config has no density_source.")
        return None
    if not isinstance(source, dict) or source.get("kind") not in SOURCE_KINDS:
        raise ModelFileError(f"The model file's density_source must name a kind ({', '.join(SOURCE_KINDS)}), got "
                             f"{shown(source)}.")
    member = SOURCE_KINDS[source["kind"]]
    if extra != {member}:
        raise ModelFileError(f"The model file's density_source of kind {source['kind']} needs the array {member!r} "
                             "alone.")
    box = source.get("box")
    if member == "raster" and not (isinstance(box, list) and len(box) == 2 and all(
            isinstance(r, list) and len(r) == 2 and all(_is_number(v) and abs(v) <= 1e6 for v in r) and r[0] < r[1]
            for r in box)):
        raise ModelFileError(f"The model file's density_source box must be [[x0, x1], [y0, y1]] with x0 < x1 and "
                             f"y0 < y1, got {shown(box)}.")
    if member == "points" and not _is_number(source.get("bandwidth")):
        raise ModelFileError(f"The model file's density_source needs a bandwidth, got {shown(source.get('bandwidth'))}.")
    return member


def _check_activation_member(activation: Activation, has_A: bool):
    """A learned activation needs its parameters A; a fixed one has none (checked before any data is read)."""
    if activation.learnable and not has_A:
        raise ModelFileError(f"The model file's activation {activation.name} is learned, but its parameters (array "
                             "'A') are missing.")
    if has_A and not activation.learnable:
        raise ModelFileError(f"The model file holds activation parameters A, but its activation {activation.name} "
                             "has none.")


def _upgrade(meta: dict) -> dict:
    """The config of an older format version on the current conventions: version 1 stored λ × 2 (FlowLab's λ was
    half of Keller et al.'s then), so its ``hyper.lam`` is halved."""
    v = meta.get("version", VERSION)
    if v >= VERSION:
        return meta
    hyper = meta.get("hyper")
    if isinstance(hyper, dict) and _is_number(hyper.get("lam")):
        meta = {**meta, "hyper": {**hyper, "lam": hyper["lam"] / 2.0}}
    return {**meta, "version": VERSION, "upgraded_from": v}


# ---- model files: reading with caps -------------------------------------------------------------------------------
@contextmanager
def _reading(what: str):
    """A failure of the zip or .npy parsers on hostile bytes (BadZipFile, zlib.error, EOFError, a bad CRC, numpy's
    multi-line ValueError, ...) becomes one sentence naming ``what``."""
    try:
        yield
    except ModelFileError:
        raise
    except Exception:  # noqa: BLE001 - parsers of untrusted bytes raise many kinds
        raise ModelFileError(f"Not a FlowLab model file: {what} is damaged or not in the expected format.") from None


def _open_archive(source) -> zipfile.ZipFile:
    """The zip archive of a path, bytes or binary file object, read only up to ``MAX_ARCHIVE_BYTES``."""
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as f:
                return _open_archive(f)
        except OSError as e:
            raise ModelFileError(f"Cannot read the model file {shown(str(source))} ({e.strerror or 'unreadable'}).") \
                from None
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
    elif hasattr(source, "read"):
        raw = source.read(MAX_ARCHIVE_BYTES + 1)
        if not isinstance(raw, (bytes, bytearray)):
            raise ModelFileError("A model file must be opened in binary mode.")
    else:
        raise ModelFileError(f"A model file is a path, bytes or a binary file, got {type(source).__name__}.")
    if len(raw) > MAX_ARCHIVE_BYTES:
        raise ModelFileError(f"The model file has {len(raw):,} bytes; {_LARGEST} takes at most {MAX_ARCHIVE_BYTES:,}.")
    end = raw.rfind(b"PK\x05\x06", max(0, len(raw) - 65_557))  # the end record, found as zipfile finds it
    if 0 <= end <= len(raw) - 22 and struct.unpack_from("<I", raw, end + 12)[0] > MAX_DIRECTORY_BYTES:
        raise ModelFileError(f"Not a FlowLab model file: its directory lists far more than the .npy arrays {_KNOWN}.")
    with _reading("the file (expected an .npz archive, a zip of .npy arrays)"):
        return zipfile.ZipFile(_io.BytesIO(raw))


def _members(zf: zipfile.ZipFile) -> dict:
    """Member name -> ZipInfo: each one known, present once, not encrypted, declaring an unpacked size within its
    cap (zipfile unpacks no more than that, then checks the CRC)."""
    infos = zf.infolist()
    if len(infos) > len(MEMBER_BYTES):
        raise ModelFileError(f"Not a FlowLab model file: it holds {len(infos):,} members; a model file holds only "
                             f"the .npy arrays {_KNOWN}.")
    out = {}
    for info in infos:
        key = info.filename[:-4] if info.filename.endswith(".npy") else None
        if key not in MEMBER_BYTES:
            raise ModelFileError(f"Not a FlowLab model file: it holds {shown(info.filename)}; a model file holds only "
                                 f"the .npy arrays {_KNOWN}.")
        if key in out:
            raise ModelFileError(f"Not a FlowLab model file: it holds {info.filename} twice.")
        if info.flag_bits & 0x1:
            raise ModelFileError(f"The model file's {key} is encrypted; FlowLab reads plain .npz files.")
        if info.file_size > MEMBER_BYTES[key]:
            raise ModelFileError(f"The model file's {key} would unpack to {info.file_size:,} bytes; {_LARGEST} needs "
                                 f"at most {MEMBER_BYTES[key]:,}.")
        out[key] = info
    for key in ("W", "b", "config"):
        if key not in out:
            raise ModelFileError(f"Not a FlowLab model file: array {key!r} is missing.")
    return out


def _read_npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, want: tuple | None = None) -> np.ndarray:
    """Member ``key`` as an array: its .npy header is parsed and checked (``_check_header``) before any data is
    read, then exactly shape × itemsize bytes are read and taken as raw numbers (nothing is unpickled)."""
    with _reading(f"its member {key}"), zf.open(info) as f:
        version = npy.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ModelFileError(f"The model file's {key} is .npy version {version}; FlowLab reads versions 1 and 2.")
        header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran, dtype = header(f, max_header_size=MAX_HEADER_CHARS)
        _check_header(key, shape, dtype, want)
        n = math.prod(shape) * dtype.itemsize
        data = f.read(n)
        if len(data) != n:
            raise ModelFileError(f"The model file's {key} is truncated ({len(data):,} of {n:,} bytes).")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


def _check_header(key: str, shape: tuple, dtype: np.dtype, want: tuple | None):
    """config: a 0-d string of at most MAX_CONFIG_CHARS; arrays: real floats, shape ``want`` (W: (L, D, D) within
    the caps)."""
    if any(n < 0 for n in shape):
        raise ModelFileError(f"The model file's {key} has a negative shape {shown(shape)}.")
    if key == "config":
        if dtype.kind != "U" or shape != () or dtype.itemsize == 0:
            raise ModelFileError("The model file's config must be a 0-d string array holding JSON.")
        if dtype.itemsize // 4 > MAX_CONFIG_CHARS:
            raise ModelFileError(f"The model file's config has {dtype.itemsize // 4:,} characters; at most "
                                 f"{MAX_CONFIG_CHARS:,} are read.")
        return
    if dtype.kind != "f" or dtype.name not in _FLOATS:
        raise ModelFileError(f"The model file's {key} holds {shown(str(dtype))} values; its arrays must hold real "
                             "floats (float16, float32 or float64).")
    if len(shape) != _NDIM[key]:
        raise ModelFileError(f"The model file's {key} must have {_NDIM[key]} axes, got shape {shown(shape)}.")
    if want is not None and tuple(shape) != want:
        raise ModelFileError(f"{key} must have shape {want} to match W, got {shown(shape)}.")
    if key == "raster" and not 2 <= min(shape) <= max(shape) <= MAX_SIDE:
        raise ModelFileError(f"The model file's raster must have 2 to {MAX_SIDE} pixels per side, got {shown(shape)}.")
    if key == "points" and not (shape[1] == 2 and shape[0] <= MAX_POINTS):
        raise ModelFileError(f"The model file's points must have shape (N, 2) with N <= {MAX_POINTS:,}, got "
                             f"{shown(shape)}.")
    if key == "W" and (shape[1] != shape[2] or min(shape) < 1):
        raise ModelFileError(f"W must have shape (L, D, D), got {shown(shape)}.")
    if key == "W" and (shape[0] > MAX_MODEL_LAYERS or shape[1] > MAX_MODEL_DIM):
        raise ModelFileError(f"The model has {shape[0]:,} layers of dimension {shape[1]:,}; FlowLab reads models of "
                             f"at most {MAX_MODEL_LAYERS} layers of dimension at most {MAX_MODEL_DIM}.")


def _float32(key: str, a: np.ndarray) -> np.ndarray:
    """``a`` as float32 (what FlowLab computes in): every value finite and within float32's range."""
    a64 = a.astype(np.float64)
    if not np.all(np.isfinite(a64)):
        raise ModelFileError(f"The model file's {key} holds NaN or infinite values.")
    if np.any(np.abs(a64) > F32_MAX):
        raise ModelFileError(f"The model file's {key} holds values beyond float32's range (±3.4e38), in which "
                             "FlowLab computes.")
    return a64.astype(np.float32)


def _check_invertible(W: np.ndarray):
    """Every W_k invertible in float32: condition number s_max/s_min <= MAX_COND and log|det W_k| above
    MIN_LOGDET_PER_DIM · D (else the inverse, sampling and the log-density are meaningless)."""
    W64 = W.astype(np.float64)
    s = np.linalg.svd(W64, compute_uv=False)
    sign, logdet = np.linalg.slogdet(W64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = np.where(s[:, -1] > 0, s[:, 0] / s[:, -1], np.inf)
    bad = (sign == 0) | ~(cond <= MAX_COND) | ~(logdet > MIN_LOGDET_PER_DIM * W.shape[1])
    if np.any(bad):
        k = int(np.argmax(bad))
        raise ModelFileError(f"The model file's W_{k + 1} is singular or nearly so (condition number {cond[k]:.1e}, "
                             f"log|det| {logdet[k]:.1f}); every layer of a flow must be invertible in float32.")


def _json_kind(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(v), "a number")


def _depth(obj) -> int:
    """How deeply JSON lists and objects nest (0 for a scalar), counted without recursion."""
    depth, level = 0, [obj] if isinstance(obj, (dict, list)) else []
    while level:
        depth += 1
        level = [v for o in level for v in (o.values() if isinstance(o, dict) else o) if isinstance(v, (dict, list))]
    return depth


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= F32_MAX  # NaN and inf fail too


def _config(arr: np.ndarray) -> tuple[dict, Activation]:
    """The config JSON (an object nested at most MAX_CONFIG_DEPTH deep, the keys FlowLab reads well typed) and its
    activation."""
    deep = f"The model file's config is nested more than {MAX_CONFIG_DEPTH} levels deep."
    try:
        meta = json.loads(str(arr[()]))
    except RecursionError:
        raise ModelFileError(deep) from None
    except ValueError as e:  # JSONDecodeError, or an integer too long to convert
        where = f" at character {e.pos:,}" if isinstance(e, json.JSONDecodeError) else ""
        raise ModelFileError(f"The model file's config is not valid JSON{where}.") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"The model file's config must be a JSON object, got {_json_kind(meta)}.")
    if _depth(meta) > MAX_CONFIG_DEPTH:
        raise ModelFileError(deep)
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"Not a FlowLab model file: format is {shown(meta.get('format'))}, expected {FORMAT!r}.")
    v = meta.get("version", VERSION)
    if type(v) is not int or not 1 <= v <= VERSION:
        raise ModelFileError(f"The model file has format version {shown(v)}; this FlowLab reads versions 1 to "
                             f"{VERSION}.")
    act = meta.get("activation", {})
    if not isinstance(act, dict):
        raise ModelFileError(f"The model file's activation must be a JSON object (name, alpha, beta), got "
                             f"{_json_kind(act)}.")
    name = act.get("name", "smooth_leaky_relu")
    if not isinstance(name, str) or name not in ACTIVATION_NAMES:
        raise ModelFileError(f"The model file names the activation {shown(name)}; FlowLab knows "
                             f"{', '.join(ACTIVATION_NAMES)}.")
    for p in ("alpha", "beta"):
        if act.get(p) is not None and not _is_number(act[p]):
            raise ModelFileError(f"The model file's activation {p} must be a finite number, got {shown(act[p])}.")
    for key, what in (("density", "a density name"), ("method", "a method name")):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise ModelFileError(f"The model file's {key} must be {what}, got {_json_kind(meta[key])}.")
    steps = meta.get("steps")
    if steps is not None and not (_is_number(steps) and 0 <= steps <= 1e15):
        raise ModelFileError(f"The model file's steps must be a count of steps, got {shown(steps)}.")
    return _upgrade(meta), make_activation(name, act.get("alpha"), act.get("beta"))  # its checks: one sentence each
