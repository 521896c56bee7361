"""FlowLab entry point: `streamlit run app.py`."""
from __future__ import annotations

import os

import jax
import streamlit as st

from flowlab.system import device_label
from pages._shared.ui import PAGES

st.set_page_config(page_title="FlowLab", page_icon=":material/water:", layout="wide")


@st.cache_resource
def _setup_compile_cache() -> str:
    """Persistent JAX compilation cache, so a second session or a restarted server skips compile time."""
    path = os.environ.get("FLOWLAB_JAX_CACHE", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".jax_cache"))
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return path


_setup_compile_cache()
nav = st.navigation([st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path, default=p.url_path == "home")
                     for p in PAGES])
st.sidebar.caption(f"JAX {jax.__version__} on {device_label()}")
nav.run()
