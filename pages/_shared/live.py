"""The live panels of the Playground: one Streamlit component (components v2, no iframe) that draws a row of equal
2-D panels on canvases from the compact data of ``flowlab.plots.live``."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

_JS = Path(__file__).with_name("live_panels.js").read_text()
_CSS = ".flowlab-live { display: flex; gap: 8px; align-items: flex-start; } .flowlab-live canvas { display: block; }"
_PANELS = st.components.v2.component("flowlab_live_panels", js=_JS, css=_CSS)


def live_panels(panels: list, key: str, frame: int = 0, max_height: int = 340):
    """Draw ``panels`` (from flowlab.plots.live) side by side; ``frame`` tells the browser which redraw this is."""
    _PANELS(data={"panels": panels, "frame": int(frame), "max_height": int(max_height)}, key=key, height="content")


_DRAW_JS = Path(__file__).with_name("draw_canvas.js").read_text()
_DRAW = st.components.v2.component("flowlab_draw_canvas", js=_DRAW_JS,
                                   css=".flowlab-draw canvas { display: block; border-radius: 4px; }")


def draw_canvas(points, box, key: str, clear: int = 0, on_change=None):
    """A canvas to draw points with the mouse; when a stroke ends, the component's state "points" (every point so
    far) changes and ``on_change`` runs (it reads ``st.session_state[key]``)."""
    _DRAW(data={"points": [list(map(float, p)) for p in points], "box": [list(box[0]), list(box[1])],
                "clear": int(clear)}, key=key, height="content", width="content",
          on_points_change=on_change or (lambda: None))
