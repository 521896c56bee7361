"""FlowLab entry point: `streamlit run app.py`."""
from __future__ import annotations

import os

import jax
import streamlit as st

from flowlab.system import device_label, enable_compile_cache
from pages._shared.ui import PAGES

st.set_page_config(page_title="FlowLab", page_icon=":material/water:", layout="wide")


@st.cache_resource
def _compile_cache() -> str | None:
    """The persistent JAX compilation cache, once per server (a warning sentence when its folder is unusable)."""
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".jax_cache")
    return enable_compile_cache(os.environ.get("FLOWLAB_JAX_CACHE", default))


cache_warning = _compile_cache()
nav = st.navigation([st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path, default=p.url_path == "home")
                     for p in PAGES])
st.sidebar.caption(f"JAX {jax.__version__} on {device_label()}")
if cache_warning:
    st.sidebar.warning(cache_warning, icon=":material/warning:")
nav.run()
