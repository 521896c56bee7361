"""The one palette of FlowLab's figures (Open Color shades), its fonts and small colour helpers.

No plotly import: the method registry (``flowlab.gradients``) takes its colours from here too, so a method has the
same colour on every page."""
from __future__ import annotations

BLUE = "#3b5bdb"
ORANGE = "#e8590c"
GREEN = "#2b8a3e"
RED = "#c92a2a"
PURPLE = "#7048e8"
CYAN = "#1098ad"
PINK = "#c2255c"
YELLOW = "#f08c00"
AMBER = "#f59f00"
LIME = "#5c940d"
ALARM = "#e03131"  # divergence markers

DARK = "#212529"
DARK_GREY = "#495057"
GREY = "#868e96"  # reference lines, the truth
LIGHT_GREY = "#adb5bd"
RULE = "#ced4da"  # axis lines
BORDER = "#dee2e6"
FAINT = "#f1f3f5"  # grid lines of dense figures, empty cells
GRID = "#eee"

LABEL_COLORS = (BLUE, ORANGE, GREEN, PINK, PURPLE, CYAN, YELLOW, LIME)  # one per mode / arm / group
GRID_LINE_COLORS = ("#74c0fc", "#ffa94d")  # the two families of grid lines (constant x1 / x2; circles / rays)
DENSITY_SCALE = "Viridis"
DIVERGING_SCALE = "RdBu_r"  # signed fields: blue below zero, red above
FONT = dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=13)


def rgba(hex_color: str, alpha: float) -> str:
    """'#rrggbb' with an opacity, as plotly's 'rgba(r,g,b,a)'."""
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"
