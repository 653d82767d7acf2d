"""The dashboard's pages (Streamlit): Live, Models and Drift, with the stream and the window chosen in the sidebar.

Served by ``server.py`` (``python -m serving.dashboard``). The pages draw what :mod:`serving.dashboard.queries`,
:mod:`~serving.dashboard.summary` and :mod:`~serving.dashboard.sources` compute; nothing here touches files.
"""

from __future__ import annotations

import streamlit as st

from serving.dashboard import page_drift, page_live, page_models
from serving.dashboard.ui import sidebar

# No page_icon: a Material icon favicon would be fetched from fonts.gstatic.com, which a closed network lacks.
st.set_page_config(page_title="Sentiment dashboard", layout="wide")
ctx = sidebar()


def live() -> None:
    page_live.render(ctx)


def models() -> None:
    page_models.render(ctx)


def drift() -> None:
    page_drift.render(ctx)


st.navigation([
    st.Page(live, title="Live", default=True),
    st.Page(models, title="Models", url_path="models"),
    st.Page(drift, title="Drift", url_path="drift"),
]).run()
