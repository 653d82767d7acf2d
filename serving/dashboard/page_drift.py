"""The Drift page: the window's labels and P(positive) histogram against the champion's validation profile, and
the daily drift figures of the report DAG over time."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from serving.dashboard import queries, sources, summary
from serving.dashboard.ui import Context, number

_PROFILES = alt.Scale(domain=["champion (validation)", "live"], range=["#bdbdbd", "#1565c0"])


def render(ctx: Context) -> None:
    st.title(f"Drift · {ctx.stream}")
    st.fragment(_live, run_every=ctx.refresh_s)(ctx)
    _daily(ctx)


def _live(ctx: Context) -> None:
    now = queries.utc_now()
    state = ctx.state()
    champ = sources.champion(ctx.runs(), state.model)
    live = ctx.reader.profile(ctx.window, now)
    reference = (champ or {}).get("reference")
    if champ is None:
        st.warning("No leaderboard yet, so no champion to compare with.")
    else:
        st.markdown(f"Compared with **{champ['model']}** of run `{champ['run']}`"
                    f"{' (' + champ['model_tag'] + ')' if champ.get('model_tag') else ''}: {champ['how']}.")
        if reference is None:
            st.warning("The champion's leaderboard row has no validation profile (`reference`): re-run evaluation.")
    dash = ctx.settings.dashboard
    result = summary.live_drift(reference, live, psi_threshold=dash.psi_threshold, js_threshold=dash.js_threshold)
    cols = st.columns(4)
    cols[0].metric(f"Live posts ({ctx.window})", number(live["n"]))
    cols[1].metric("PSI of P(positive)", "–" if not result or result["psi"] is None else f"{result['psi']:.3f}",
                   help=f"threshold {dash.psi_threshold:g} (dashboard_psi_threshold)")
    cols[2].metric("JS distance of labels", "–" if not result or result["js"] is None else f"{result['js']:.3f}",
                   help=f"threshold {dash.js_threshold:g} (dashboard_js_threshold)")
    flag = None if result is None else result["drift"]
    cols[3].metric("Drift", {True: "DRIFT", False: "no drift", None: "–"}[flag])
    if flag:
        st.error(f"Drift: the last {ctx.window} of answers differ from the champion's validation profile "
                 "(PSI or JS distance above its threshold).")
    elif flag is False:
        st.success(f"No drift in the last {ctx.window}.")
    else:
        st.info("Nothing to compare yet (no live posts in the window, or no reference profile).")
    labels, bins = summary.profile_shares(reference, live)
    left, right = st.columns(2)
    left.caption("Label shares")
    left.altair_chart(_bars(labels, "label:N", list(summary.DISPLAY_LABELS)), width="stretch")
    right.caption("P(positive) histogram (shares of the posts with a probability)")
    right.altair_chart(_bars(bins, "bin:N", None), width="stretch")


def _bars(frame: pd.DataFrame, x: str, sort) -> alt.Chart:
    return alt.Chart(frame.dropna(subset=["share"])).mark_bar().encode(
        x=alt.X(x, title=None, sort=sort), xOffset="profile:N",
        y=alt.Y("share:Q", title="share", axis=alt.Axis(format="%")),
        color=alt.Color("profile:N", scale=_PROFILES, title=None),
        tooltip=[x, "profile:N", "count:Q", alt.Tooltip("share:Q", format=".1%")]).properties(height=260)


def _daily(ctx: Context) -> None:
    st.subheader("Daily drift (report DAG)")
    rows = sources.daily_reports(ctx.stream_dir)
    if not rows:
        st.info(f"No daily reports under {ctx.stream_dir / 'reports'} yet (the report DAG writes "
                "date=YYYY-MM-DD/summary.json).")
        return
    frame = pd.DataFrame(rows)
    frame["day"] = pd.to_datetime(frame["date"], errors="coerce")
    drifted = frame[frame["drift"] == True]  # noqa: E712 - None means unknown, not False
    if not drifted.empty:
        st.error(f"Drift flagged on {len(drifted)} day(s), latest {drifted['date'].iloc[-1]}.")
    long = frame.melt(id_vars=["day", "drift"], value_vars=["psi", "js"], var_name="measure", value_name="value")
    thresholds = pd.DataFrame([{"measure": "psi", "value": _last(frame, "psi_threshold")},
                               {"measure": "js", "value": _last(frame, "js_threshold")}]).dropna()
    base = alt.Chart(long.dropna(subset=["value"])).encode(
        x=alt.X("day:T", title="day"), y=alt.Y("value:Q", title="distance"),
        color=alt.Color("measure:N", title=None))
    chart = base.mark_line() + base.mark_point(filled=True, size=70).encode(
        shape=alt.Shape("drift:N", title="drift"), tooltip=["day:T", "measure:N", alt.Tooltip("value:Q", format=".3f"),
                                                            "drift:N"])
    rules = alt.Chart(thresholds).mark_rule(strokeDash=[4, 4]).encode(y="value:Q", color="measure:N")
    st.altair_chart((chart + rules).properties(height=260), width="stretch")
    table = frame[["date", "rows", "psi", "js", "drift", "n_live", "reference_model"]].iloc[::-1]
    st.table(table.assign(rows=table["rows"].map(number),
                          psi=table["psi"].map(lambda v: "–" if pd.isna(v) else f"{v:.3f}"),
                          js=table["js"].map(lambda v: "–" if pd.isna(v) else f"{v:.3f}"),
                          drift=table["drift"].map({True: "DRIFT", False: "no"}).fillna("–"),
                          n_live=table["n_live"].map(number)), hide_index=True)
    latest = next((r for r in reversed(rows) if r["chart"]), None)
    if latest:
        st.caption(f"The report's chart of {latest['date']} ({latest['folder']})")
        st.image(latest["chart"], width="stretch")


def _last(frame: pd.DataFrame, column: str):
    values = frame[column].dropna()
    return values.iloc[-1] if not values.empty else None
