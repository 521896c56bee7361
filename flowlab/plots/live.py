"""Data of the Playground's live panels (drawn by the page's canvas component): pure functions from arrays to small
JSON-able dicts.  A panel shows points, or a density image with points on top, over a plot range with equal axes."""
from __future__ import annotations

from .raster import colour_table, density_png, pack_labels, pack_points
from .style import BLUE, DENSITY_SCALE, LABEL_COLORS, ORANGE


def _stops(scale: str = DENSITY_SCALE, n: int = 9) -> list:
    t = colour_table(scale)
    return ["#%02x%02x%02x" % tuple(t[round(i * (len(t) - 1) / (n - 1))]) for i in range(n)]


def points_panel(points, plot_range, title: str, labels=None, colour: str = BLUE, max_points: int = 1000,
                 alpha: float = 0.55) -> dict:
    """Points on the plane: one colour, or one per integer label (the palette's LABEL_COLORS)."""
    out = {"title": title, "range": [list(map(float, plot_range[0])), list(map(float, plot_range[1]))],
           "points": pack_points(points, max_points), "alpha": alpha}
    if labels is not None:
        out["labels"] = pack_labels(labels[:max_points])
        out["colours"] = list(LABEL_COLORS)
    else:
        out["colours"] = [colour]
    return out


def density_panel(logq, plot_range, zmax: float, title: str, name: str = "q(x)") -> dict:
    """A density on the grid of ``plot_range`` (log values, rows = y ascending), coloured from 0 to ``zmax`` on the
    palette's density scale, with a colour bar."""
    return {"title": title, "range": [list(map(float, plot_range[0])), list(map(float, plot_range[1]))],
            "image": density_png(logq, zmax), "colourbar": {"stops": _stops(), "max": float(zmax), "label": name}}


def samples_panel(samples, plot_range, title: str = "samples from the flow", max_points: int = 1000) -> dict:
    return points_panel(samples, plot_range, title, colour=ORANGE, max_points=max_points, alpha=0.6)
