"""Animated GIFs a lecturer can put on a slide, drawn on the server with numpy and Pillow (no browser): the learned
density over a training run, and points followed through the layers of a flow."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .raster import colour_table
from .style import DENSITY_SCALE, LABEL_COLORS

MAX_BYTES = 5 * 1024 * 1024
CAPTION_PX = 22


def _hex(c: str) -> tuple:
    c = c.lstrip("#")
    return tuple(int(c[i:i + 2], 16) for i in (0, 2, 4))


def _caption(im: Image.Image, text: str) -> Image.Image:
    """``im`` with a white strip below it holding ``text``."""
    out = Image.new("RGB", (im.width, im.height + CAPTION_PX), (255, 255, 255))
    out.paste(im, (0, 0))
    ImageDraw.Draw(out).text((6, im.height + 4), text, fill=(33, 37, 41), font=ImageFont.load_default(size=13))
    return out


def _save(frames: list, duration_ms: int) -> bytes:
    """GIF bytes of ``frames`` (RGB images), looping; frames are dropped evenly until it fits in MAX_BYTES."""
    while True:
        pal = [f.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE) for f in frames]
        buf = io.BytesIO()
        pal[0].save(buf, format="GIF", save_all=True, append_images=pal[1:], duration=duration_ms, loop=0,
                    optimize=False, disposal=1)
        if buf.tell() <= MAX_BYTES or len(frames) <= 2:
            return buf.getvalue()
        frames = frames[::2] if len(frames) > 3 else frames[:2]


def _density_image(lp, zmax: float, scale: int) -> Image.Image:
    lp = np.asarray(lp, np.float64)
    p = np.where(np.isfinite(lp), np.exp(np.clip(lp, -700, 50)), 0.0)
    idx = np.clip(np.round(p / max(zmax, 1e-300) * 255), 0, 255).astype(np.uint8)[::-1]
    im = Image.fromarray(colour_table(DENSITY_SCALE)[idx], "RGB")
    return im.resize((im.width * scale, im.height * scale), Image.BILINEAR)


def density_picture(lp, zmax: float, title: str = "", scale: int = 6) -> bytes:
    """PNG bytes of one density on a grid (rows = y ascending), coloured from 0 to ``zmax``, with a caption."""
    buf = io.BytesIO()
    _caption(_density_image(lp, zmax, scale), title).save(buf, format="PNG")
    return buf.getvalue()


def density_gif(frames, zmax: float, title: str = "", scale: int = 4, duration_ms: int = 150) -> bytes:
    """An animation of densities on a grid: ``frames`` is a list of (step, log p as (rows = y ascending) arrays),
    coloured from 0 to ``zmax`` on the palette's density scale, each frame captioned with its step."""
    if not frames:
        raise ValueError("There is nothing to animate yet: train for a few chunks first.")
    images = [_caption(_density_image(lp, zmax, scale), f"{title} · step {step:,}" if title else f"step {step:,}")
              for step, lp in frames]
    return _save(images, duration_ms)


def points_gif(stages, names, plot_ranges, labels=None, size: int = 360, duration_ms: int = 300) -> bytes:
    """An animation of points through the stages of a flow: ``stages`` (S, N, 2), one square plot range per stage
    (the axes may follow the points), points coloured by their integer label (the palette's LABEL_COLORS)."""
    stages = np.asarray(stages, np.float64)
    colours = np.array([_hex(c) for c in LABEL_COLORS], np.uint8)
    lab = np.zeros(stages.shape[1], np.int64) if labels is None else np.asarray(labels, np.int64)
    images = []
    for pts, name, ((x0, x1), (y0, y1)) in zip(stages, names, plot_ranges):
        canvas = np.full((size, size, 3), 255, np.uint8)
        ok = np.all(np.isfinite(pts), axis=1)
        u = ((pts[ok, 0] - x0) / (x1 - x0) * (size - 1)).round().astype(np.int64)
        v = ((1 - (pts[ok, 1] - y0) / (y1 - y0)) * (size - 1)).round().astype(np.int64)
        inside = (u >= 1) & (u < size - 1) & (v >= 1) & (v < size - 1)
        c = colours[lab[ok][inside] % len(colours)]
        for du in (-1, 0, 1):
            for dv in (-1, 0, 1):
                canvas[v[inside] + dv, u[inside] + du] = c
        images.append(_caption(Image.fromarray(canvas, "RGB"), str(name)))
    return _save(images, duration_ms)
