"""What every page shares: the settings, the chosen stream and window (sidebar), the cached query reader, and a
few drawing helpers."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import streamlit as st

from ml.settings import Settings, get_settings
from serving.dashboard import queries, sources

#: Colours of the labels in every chart.
LABEL_COLOURS = {"Positive": "#2e7d32", "Negative": "#c62828", "Neutral": "#9e9e9e"}
HEALTH_COLOURS = {"red": "#c62828", "green": "#2e7d32", "gray": "#757575", "orange": "#ef6c00"}


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    return get_settings()


@st.cache_resource(show_spinner=False, max_entries=8)
def reader(output: str, memory_mb: int) -> queries.StreamReader:
    """One DuckDB reader (and its past-day cache) per stream output, shared by every browser session."""
    return queries.StreamReader(Path(output), memory_mb=memory_mb)


@dataclass
class Context:
    settings: Settings
    stream: str
    window: str
    auto_refresh: bool

    @property
    def stream_dir(self) -> Path:
        return self.settings.stream_dir(self.stream)

    @property
    def reader(self) -> queries.StreamReader:
        return reader(str(self.stream_dir / "output"), self.settings.dashboard.memory_mb)

    @property
    def refresh_s(self) -> float | None:
        return self.settings.dashboard.refresh_s if self.auto_refresh else None

    def state(self) -> sources.StreamState:
        return sources.stream_state(self.stream_dir)

    def runs(self) -> list[sources.Run]:
        return sources.runs(self.settings.reports_root)


def sidebar() -> Context:
    """Draw the sidebar (stream, window, auto-refresh) and return the choices."""
    s = settings()
    names = sources.stream_names(s.stream_root, s.stream.name)
    windows = list(queries.WINDOWS)
    with st.sidebar:
        stream = st.selectbox("Stream", names, key="stream", bind="query-params",
                              help=f"Folders under {s.stream_root} with a status file or an output folder.")
        window = st.selectbox("Window", windows, index=windows.index(s.dashboard.window), key="window",
                              bind="query-params", help="Time window of the Live and Drift pages (by ingest time, UTC).")
        auto = st.toggle("Refresh by itself", value=True, key="auto_refresh",
                         help=f"Redraw the live parts every {s.dashboard.refresh_s:g} s (dashboard_refresh_s).")
        st.caption(f"Home: `{s.home}`")
    return Context(settings=s, stream=stream or s.stream.name, window=window or s.dashboard.window,
                   auto_refresh=bool(auto))


def health_badge(verdict: sources.Health) -> None:
    """The stream's health as a coloured block (``data-level`` says the level for tests and screen readers)."""
    colour = HEALTH_COLOURS[verdict.colour]
    st.html(f'<div id="stream-health" data-level="{verdict.level}" data-colour="{verdict.colour}" role="status" '
            f'style="background:{colour};color:#fff;padding:.6em 1em;border-radius:6px;font-weight:600">'
            f"Stream {html.escape(verdict.level.upper())} &middot; {html.escape(verdict.reason)}</div>")


def age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def number(value: float | int | None, digits: int = 0) -> str:
    if value is None or value != value:  # None or NaN
        return "–"
    return f"{value:,.{digits}f}"


def percent(value: float | None) -> str:
    return "–" if value is None or value != value else f"{100 * value:.1f}%"


def utc(moment: datetime | None) -> str:
    return "–" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")
