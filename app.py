"""FlowLab entry point: `streamlit run app.py`."""
from __future__ import annotations

import os

import jax
import streamlit as st

st.set_page_config(page_title="FlowLab", page_icon="🌊", layout="wide")


@st.cache_resource
def _setup_compile_cache() -> str:
    """Persistent JAX compilation cache, so a second session or a restarted server skips compile time."""
    path = os.environ.get("FLOWLAB_JAX_CACHE", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".jax_cache"))
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return path


_setup_compile_cache()


def device_label() -> str:
    d = jax.devices()[0]
    kind = getattr(d, "device_kind", "") or d.platform
    return f"{d.platform.upper()} · {kind}"


PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True, url_path="home"),
    st.Page("pages/playground.py", title="Playground", icon="🎛️", url_path="playground"),
    st.Page("pages/layers.py", title="Layers", icon="🧅", url_path="layers"),
    st.Page("pages/compare.py", title="Compare", icon="📉", url_path="compare"),
    st.Page("pages/timing.py", title="Timing", icon="⏱️", url_path="timing"),
    st.Page("pages/learn.py", title="Learn", icon="🎓", url_path="learn"),
]
nav = st.navigation(PAGES)
st.sidebar.caption(f"JAX {jax.__version__} on {device_label()}")
nav.run()
