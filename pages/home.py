"""Home: what FlowLab is, a picture FlowLab made of a flow learning, a 10-minute path through the pages for a lecture,
and a link to every page."""
from pathlib import Path

import streamlit as st

from flowlab.settings import literal
from flowlab.system import read_results
from pages._shared.ui import PAGES, page_setup

MOVIE = Path(__file__).resolve().parents[1] / "assets" / "home" / "moons.gif"  # python -m flowlab figure movie
BY_PATH = {p.url_path: p for p in PAGES}

# (page, minutes, query of the link, what to show): a suggested lecture, each step one link
LECTURE = (
    ("learn", 2, None, "Lesson 1: a density pushed through a map is divided by how much the map stretches — the "
                       "log-determinant every flow pays for."),
    ("playground", 3, None, "Press **Train** on the two moons and watch the KL fall; then switch *Data* to *Your "
                            "text* and let the class's names be learned."),
    ("playground", 1, {"data": "text", "text": "FLOW"}, "A word as a density: the KL stays above zero because a "
                                                        "smooth flow cannot make sharp edges."),
    ("layers", 2, None, "Follow the points through each layer, and see where each layer raises or lowers the "
                        "density."),
    ("compare", 1, None, "Ordinary, relative and self-normalizing gradients on the same starting weights."),
    ("timing", 1, None, "Why it matters: the ordinary gradient's cost grows like D³, the relative one's like D²."),
)

page_setup()
st.title("FlowLab")
st.markdown(
    "FlowLab is an interactive lab for **normalizing flows**: fully connected invertible networks that turn a simple "
    "Gaussian into a complicated 2-D density, trained by maximum likelihood with the exact change-of-variables "
    "formula. You can train one live, look inside it layer by layer, and compare the ordinary, relative and "
    "self-normalizing gradients that make the log-determinant cheap (Gresele et al. 2020; Keller et al. 2021)."
)
left, right = st.columns([1.15, 1], gap="large")
with left:
    st.subheader(f"A {sum(m for _, m, _, _ in LECTURE)}-minute lecture", anchor=False)
    for i, (url_path, minutes, query, what) in enumerate(LECTURE, 1):
        page = BY_PATH[url_path]
        st.page_link(page.path, label=f"{i}. {page.title} · {minutes} min", icon=page.icon, query_params=query)
        st.caption(what)
with right:
    record = (read_results(MOVIE.with_suffix(".json")) or [None])[0]
    if MOVIE.is_file() and record:
        st.image(str(MOVIE), width="stretch")
        name = record["label"].split(" (")[0].lower()
        st.caption(f"Made by FlowLab: a {record['layers']}-layer flow learning the {name} with the "
                   f"{record['method'].replace('_', '-')} gradient — the true density (left) and the learned one at "
                   f"step 0 and {record['frames'] - 1} more times up to step {record['steps']:,} (KL {record['kl']:.2f} "
                   f"nats at the end). Made with {literal(record.get('command', 'python -m flowlab figure movie'))}.")

st.subheader("Every page", anchor=False)
for page in PAGES:
    if page.url_path == "home":
        continue
    c1, c2 = st.columns([1, 3])
    with c1:
        st.page_link(page.path, label=page.title, icon=page.icon)
    c2.markdown(page.what)
