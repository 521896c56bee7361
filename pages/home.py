"""Home: what FlowLab is, in two sentences, and a link to every page."""
import streamlit as st

from pages._shared.ui import PAGES, page_setup

page_setup()
st.title("FlowLab")
st.markdown(
    "FlowLab is an interactive lab for **normalizing flows**: fully connected invertible networks that turn a simple "
    "Gaussian into a complicated 2-D density, trained by maximum likelihood with the exact change-of-variables "
    "formula. You can train one live, look inside it layer by layer, and compare the ordinary, relative and "
    "self-normalizing gradients that make the log-determinant cheap (Gresele et al. 2020; Keller et al. 2021)."
)
for page in PAGES:
    if page.url_path == "home":
        continue
    c1, c2 = st.columns([1, 3])
    with c1:
        st.page_link(page.path, label=page.title, icon=page.icon)
    c2.markdown(page.what)
