"""Home: what FlowLab is, in two sentences, and a link to every page."""
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

if getattr(PagesManager, "uses_pages_directory", False):
    # Opened by URL on a freshly started server: Streamlit's old pages/ mode ran this file without app.py.
    # Switch that mode off and rerun so app.py's st.navigation takes over (same as pages/playground.py).
    PagesManager.uses_pages_directory = False
    st.rerun()

st.title("FlowLab")
st.markdown(
    "FlowLab is an interactive lab for **normalizing flows**: fully connected invertible networks that turn a simple "
    "Gaussian into a complicated 2-D density, trained by maximum likelihood with the exact change-of-variables "
    "formula. You can train one live, look inside it layer by layer, and compare the ordinary, relative and "
    "self-normalizing gradients that make the log-determinant cheap (Gresele et al. 2020; Keller et al. 2021)."
)

PAGES = [
    ("pages/playground.py", "Playground", "🎛️", "train a flow live on a toy density or your own points"),
    ("pages/layers.py", "Layers", "🧅", "follow the points through every layer and see each layer's log-determinant"),
    ("pages/compare.py", "Compare", "📉", "ordinary vs relative vs self-normalizing gradients, side by side"),
    ("pages/timing.py", "Timing", "⏱️", "how the cost of each gradient grows with the dimension"),
    ("pages/learn.py", "Learn", "🎓", "short lessons: change of variables, flows, the Jacobian term"),
]
for path, label, icon, what in PAGES:
    c1, c2 = st.columns([1, 3])
    with c1:
        st.page_link(path, label=label, icon=icon)
    c2.markdown(what)
