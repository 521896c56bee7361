"""Densities a user makes — typed text, a picture, or points drawn with the mouse — each with an exact log-density,
so the KL(p‖q) is known exactly as for the toys.

* Text and pictures are rasters: an intensity I ≥ 0 on an H × W grid of pixels of size dx × dy over a plot box.  The
  density is piecewise constant, p(x) = I_ij / (Σ I · dx · dy) on pixel (i, j), so log p, the sampler (a pixel
  with probability P_ij = I_ij / Σ I, then uniform inside it) and the entropy H = −Σ P_ij log P_ij + log(dx dy)
  are exact.
* Drawn points are a Gaussian mixture with one equal-weight component N(p_k, h² I) per point (h: the bandwidth);
  log p is exact (a log-sum-exp), the entropy is estimated by Monte Carlo with its standard error.

Every input is checked with caps (text length, image bytes and pixels, raster size, number of points) and every
refusal is one sentence."""
from __future__ import annotations

import io
import math
import statistics
from dataclasses import replace
from functools import lru_cache

import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from .densities import Density
from .metrics import LOG2PI
from .schema import shown

MAX_TEXT = 12  # characters of typed text
TEXT_FONT_PX = 96  # glyph height of the rendered text before it is scaled to the raster
MAX_SIDE = 256  # pixels per side of a raster density
IMAGE_SIDE = 128  # a picture is downscaled so its longer side has at most this many pixels
MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_IMAGE_PIXELS = 25_000_000  # width × height a picture may declare before it is decoded
MIN_POINTS, MAX_POINTS = 10, 5000  # drawn points
BANDWIDTH_RANGE = (0.05, 0.5)  # standard deviation of a drawn point's Gaussian
BOX_HALF = 3.0  # a raster is placed on a box whose longer side spans [-3, 3]
DRAW_BOX = ((-3.0, 3.0), (-3.0, 3.0))  # the drawing canvas's coordinates
MIN_MASS_FRACTION = 1e-3  # a raster needs some ink: at least this fraction of the largest possible mass


# ---- rasters ---------------------------------------------------------------------------------------------------------
def raster_density(intensity, name: str, label: str, description: str = "", box=None) -> Density:
    """The piecewise-constant density of a raster (rows = y from top to bottom, as in an image) on ``box`` (default:
    the longer side spans [−3, 3], the aspect kept)."""
    img = np.asarray(intensity, np.float64)
    if img.ndim != 2 or min(img.shape) < 2 or max(img.shape) > MAX_SIDE:
        raise ValueError(f"A raster density needs a 2-D picture of 2 to {MAX_SIDE} pixels per side, got shape "
                         f"{img.shape}.")
    if not np.all(np.isfinite(img)) or np.any(img < 0):
        raise ValueError("A raster density needs finite, non-negative intensities.")
    H, W = img.shape
    if box is None:
        half_x, half_y = BOX_HALF * W / max(H, W), BOX_HALF * H / max(H, W)
        box = ((-half_x, half_x), (-half_y, half_y))
    (x0, x1), (y0, y1) = box
    total = float(img.sum())
    if not total > MIN_MASS_FRACTION * H * W * float(img.max(initial=0.0)) or total <= 0:
        raise ValueError("The picture is empty: there is no dark (or, inverted, no light) area to learn.")
    P = img / total
    dx, dy = (x1 - x0) / W, (y1 - y0) / H
    logp_pix = np.where(P > 0, np.log(np.where(P > 0, P, 1.0)) - math.log(dx * dy), -np.inf)
    table = jnp.asarray(logp_pix[::-1].copy())  # row 0 = lowest y
    cdf = np.cumsum(P[::-1].ravel())
    cdf /= cdf[-1]
    entropy = float(-np.sum(P[P > 0] * np.log(P[P > 0])) + math.log(dx * dy))

    def sample(rng, n):
        k = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), cdf.size - 1)
        row, col = np.divmod(k, W)
        x = x0 + (col + rng.random(n)) * dx
        y = y0 + (row + rng.random(n)) * dy
        return np.stack([x, y], axis=1), np.minimum(4 * (x - x0) // (x1 - x0), 3).astype(np.int64)

    def log_prob(x):
        col = jnp.floor((x[:, 0] - x0) / dx).astype(jnp.int32)
        row = jnp.floor((x[:, 1] - y0) / dy).astype(jnp.int32)
        inside = (col >= 0) & (col < W) & (row >= 0) & (row < H)
        vals = table[jnp.clip(row, 0, H - 1), jnp.clip(col, 0, W - 1)].astype(x.dtype)
        return jnp.where(inside, vals, -jnp.inf)

    margin = 0.08 * max(x1 - x0, y1 - y0)
    d = Density(name, label, sample, log_prob, ((x0 - margin, x1 + margin), (y0 - margin, y1 + margin)),
                description, entropy_fn=lambda: entropy)
    return replace(d, source={"kind": "raster", "raster": img, "box": [[x0, x1], [y0, y1]]})


@lru_cache(maxsize=64)
def _render_text(text: str) -> np.ndarray:
    font = ImageFont.load_default(size=TEXT_FONT_PX)
    left, top, right, bottom = font.getbbox(text)
    pad = TEXT_FONT_PX // 8
    w, h = right - left + 2 * pad, bottom - top + 2 * pad
    im = Image.new("L", (w, h), 0)
    ImageDraw.Draw(im).text((pad - left, pad - top), text, fill=255, font=font)
    scale = min(1.0, MAX_SIDE / max(w, h), 64 / h)  # at most 64 px high: letters stay readable, the grid small
    if scale < 1.0:
        im = im.resize((max(2, round(w * scale)), max(2, round(h * scale))), Image.LANCZOS)
    return np.asarray(im, np.float64) / 255.0


def check_text(text) -> str:
    """The text to learn, stripped; ValueError with one sentence when it is empty or too long."""
    t = " ".join(str(text or "").split())
    if not t:
        raise ValueError("Type some text to learn, e.g. FLOW.")
    if len(t) > MAX_TEXT:
        raise ValueError(f"The text has {len(t)} characters; at most {MAX_TEXT} fit on the plane "
                         f"(got {shown(t, 30)}).")
    return t


def text_density(text: str) -> Density:
    """The density of typed text: the letters (ink) are dense, the background empty."""
    t = check_text(text)
    d = raster_density(_render_text(t), "text", f"Text: {t}", f"Uniform on the ink of the letters of {t!r}.")
    return replace(d, source={**d.source, "kind": "text", "text": t})


def image_intensity(raw: bytes, invert: bool = False, side: int = IMAGE_SIDE) -> np.ndarray:
    """A picture (PNG or JPEG bytes) as intensities in [0, 1], downscaled so the longer side has at most ``side``
    pixels: dark = dense (or light = dense with ``invert``).  ValueError with one sentence for a file that is not a
    picture, too large, or too many pixels."""
    if len(raw) > MAX_IMAGE_BYTES:
        raise ValueError(f"The picture is {len(raw) / 2**20:.1f} MB; at most {MAX_IMAGE_BYTES // 2**20} MB.")
    try:
        im = Image.open(io.BytesIO(raw))
        if im.format not in ("PNG", "JPEG"):
            raise ValueError(f"The file is a {im.format or 'unknown'} image; upload a PNG or JPEG picture.")
        w, h = im.size
        if w * h > MAX_IMAGE_PIXELS:
            raise ValueError(f"The picture has {w:,} × {h:,} pixels; at most {MAX_IMAGE_PIXELS // 10**6} million.")
        im.draft("L", (side, side))  # JPEG: decode at a reduced size
        im = im.convert("L")
        im.thumbnail((side, side), Image.LANCZOS)
    except ValueError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(f"The picture declares too many pixels; at most {MAX_IMAGE_PIXELS // 10**6} million.") \
            from None
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise ValueError("The file is not a picture FlowLab can read; upload a PNG or JPEG.") from None
    a = np.asarray(im, np.float64) / 255.0
    return a if invert else 1.0 - a


def image_density(raw: bytes, invert: bool = False, name: str = "picture") -> Density:
    """The density of a picture: dark pixels dense (``invert``: light ones)."""
    d = raster_density(image_intensity(raw, invert), "image", "Your picture",
                       "Piecewise constant on the pixels of an uploaded picture" + (", light = dense." if invert
                                                                                  else ", dark = dense."))
    return replace(d, source={**d.source, "kind": "image", "invert": bool(invert)})


# ---- drawn points ------------------------------------------------------------------------------------------------------
def check_points(points) -> np.ndarray:
    p = np.asarray(points, np.float64).reshape(-1, 2) if len(points) else np.zeros((0, 2))
    p = p[np.all(np.isfinite(p), axis=1)]
    if len(p) < MIN_POINTS:
        raise ValueError(f"Draw at least {MIN_POINTS} points (there are {len(p)}): click or drag on the canvas.")
    if len(p) > MAX_POINTS:
        raise ValueError(f"The drawing has {len(p):,} points; at most {MAX_POINTS:,}.")
    return p


def points_density(points, bandwidth: float, entropy_samples: int = 100_000) -> Density:
    """An equal-weight mixture of N(p_k, h² I) over the drawn points p_k: p(x) = (1/n) Σ_k N(x; p_k, h² I)."""
    p = check_points(points)
    h = float(bandwidth)
    lo_h, hi_h = BANDWIDTH_RANGE
    if not (lo_h <= h <= hi_h):
        raise ValueError(f"The bandwidth must be between {lo_h:g} and {hi_h:g}, got {shown(bandwidth, 20)}.")
    centres = jnp.asarray(p)
    n = len(p)

    def sample(rng, m):
        k = rng.integers(0, n, size=m)
        return p[k] + h * rng.standard_normal((m, 2)), (k * 8 // n).astype(np.int64)

    def log_prob(x):
        c = centres.astype(x.dtype)
        d2 = jnp.sum((x[:, None, :] - c[None, :, :]) ** 2, axis=-1) / (h * h)
        m = jnp.max(-0.5 * d2, axis=1, keepdims=True)
        return (m[:, 0] + jnp.log(jnp.mean(jnp.exp(-0.5 * d2 - m), axis=1)) - LOG2PI - 2.0 * math.log(h))

    lo, hi = p.min(0) - 4 * h, p.max(0) + 4 * h
    half = 0.5 * max(hi - lo) * 1.05
    c = 0.5 * (lo + hi)
    box = ((float(c[0] - half), float(c[0] + half)), (float(c[1] - half), float(c[1] + half)))

    def entropy():
        x = sample(np.random.default_rng(12345), entropy_samples)[0]
        lp = np.concatenate([np.asarray(log_prob(jnp.asarray(x[i:i + 4096]))) for i in range(0, len(x), 4096)])
        return float(-np.mean(lp))

    d = Density("drawing", "Your drawing", sample, log_prob, box,
                f"A Gaussian mixture on {n} drawn points, bandwidth {h:g}.", entropy_fn=entropy)
    return replace(d, source={"kind": "points", "points": p, "bandwidth": h})


def from_source(source: dict) -> Density:
    """Rebuild a user density from what a model file stores (``Density.source``)."""
    kind = source.get("kind")
    if kind == "text":
        return text_density(source["text"])
    if kind in ("raster", "image"):
        d = raster_density(np.asarray(source["raster"]), "image", "Saved picture", box=source.get("box"))
        return replace(d, source={**d.source, "kind": kind})
    if kind == "points":
        return points_density(source["points"], source["bandwidth"])
    raise ValueError(f"Unknown kind of user density {shown(kind, 30)}.")


# ---- what the flow reaches on them (benchmarks/own_density.py) ---------------------------------------------------------
def measured_limits(records) -> str | None:
    """One sentence from ``benchmarks/own_density.py`` records: the median KL (over seeds) each source reached per
    gradient method in the recorded budget; None without records."""
    ok = [r for r in records if r.get("benchmark") == "own_density" and "kl" in r and not r.get("diverged")]
    if not ok:
        return None
    methods = sorted({r["method"] for r in ok}, key=lambda m: (m != "relative", m))
    parts = []
    for src in dict.fromkeys(r["source"] for r in ok):
        kls = []
        for m in methods:
            v = [r["kl"] for r in ok if r["source"] == src and r["method"] == m]
            kls.append(f"{statistics.median(v):.2f}" if v else "–")
        kind, _, name = src.partition(":")
        parts.append(f"{'text ' + repr(name) if kind == 'text' else 'a ' + name + ' picture'} {' / '.join(kls)}")
    budgets = sorted({round(float(r["budget_s"])) for r in ok})
    seeds = len({r["seed"] for r in ok})
    return (f"Measured with the command line in {', '.join(map(str, budgets))} s on one CPU core, KL in nats "
            f"({' / '.join(methods).replace('_', '-')}, median of {seeds} seed{'s' * (seeds > 1)}): "
            f"{'; '.join(parts)}.")
