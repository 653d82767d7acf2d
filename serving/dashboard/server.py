"""The dashboard's ASGI app for ``streamlit run``: Streamlit's ``st.App`` around the pages of ``app.py``, behind
the token gate of :mod:`serving.dashboard.auth`. Start it with ``python -m serving.dashboard``."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from ml.settings import get_settings
from serving.dashboard.auth import TokenGate, check_bind

_settings = get_settings()
_token = _settings.dashboard.token.get_secret_value() if _settings.dashboard.token else None
# `streamlit run --server.address` decides where it listens; refuse an open address without a token here too, so
# a hand-made `streamlit run` is held to the same rule as `python -m serving.dashboard`.
check_bind(st.get_option("server.address"), _token)

app = st.App(Path(__file__).with_name("app.py"), middleware=[Middleware(TokenGate, token=_token)])
