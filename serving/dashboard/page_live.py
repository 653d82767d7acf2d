"""The Live page: stream health, label counts and shares per keyword over the window, P(positive), latest posts.

Everything below the title is one fragment that reruns every ``dashboard_refresh_s`` seconds by itself.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from serving.dashboard import queries, sources, summary
from serving.dashboard.ui import LABEL_COLOURS, Context, age, health_badge, number, percent, utc

_LABELS = list(summary.DISPLAY_LABELS)
_COLOURS = alt.Scale(domain=_LABELS, range=[LABEL_COLOURS[label] for label in _LABELS])


def render(ctx: Context) -> None:
    st.title(f"Live · {ctx.stream}")
    st.fragment(_body, run_every=ctx.refresh_s)(ctx)


def _body(ctx: Context) -> None:
    now = queries.utc_now()
    state = ctx.state()
    _health(ctx, state, now)
    start, end, bucket_s = queries.window_bounds(ctx.window, now)
    reader = ctx.reader
    series = reader.series(ctx.window, now)
    known = {summary.NO_KEYWORD if k is None else k for k in series["keyword"].unique()}
    known = sorted(known | set(st.session_state.get("keywords") or []))  # a chosen keyword that left the window
    chosen = st.multiselect("Keywords", known, key="keywords", placeholder="All keywords",
                            help="Leave empty for every keyword.") or None
    totals = summary.overall(series, chosen)
    st.caption(f"Window {ctx.window}: {utc(start)} – {utc(end)}, {bucket_s} s buckets · drawn {utc(now)}")
    cols = st.columns(5)
    cols[0].metric("Posts in window", number(totals["posts"]))
    for col, label in zip(cols[1:4], _LABELS, strict=True):
        col.metric(label, number(totals[label]), delta=percent(totals[f"share_{label}"]), delta_color="off",
                   delta_arrow="off")
    cols[4].metric("Mean P(positive)", number(totals["mean_p"], 3))
    if not totals["posts"]:
        dates = reader.layout().dates()
        newest = f" The newest partition is date={dates[-1]}." if dates else " The output has no partitions yet."
        st.info(f"No posts in the last {ctx.window}.{newest}")
    else:
        _charts(series, start, end, bucket_s, chosen, ctx)
        st.subheader("By keyword")
        table = summary.keyword_totals(series, chosen)
        st.table(_format_totals(table), hide_index=True)
    st.subheader("Latest posts")
    keyword = chosen[0] if chosen and len(chosen) == 1 and chosen[0] != summary.NO_KEYWORD else None
    posts = reader.latest(ctx.settings.dashboard.latest_posts, keyword=keyword)
    if posts.empty:
        st.caption("No posts yet.")
    else:
        _posts(posts)


def _health(ctx: Context, state: sources.StreamState, now) -> None:
    verdict = sources.health(state.status, now=now, stale_s=ctx.settings.dashboard.stale_s)
    health_badge(verdict)
    st.markdown(f"Model in service: `{state.model or 'unknown'}` · ingest "
                f"{'running' if (state.ingest or {}).get('running') else 'not running'}")
    status = state.status or {}
    totals = state.totals
    cols = st.columns(5)
    cols[0].metric("Rows/s in", number(status.get("input_rows_per_s"), 1),
                   help=f"processed: {number(status.get('processed_rows_per_s'), 1)} rows/s")
    cols[1].metric("Last batch age", age(verdict.batch_age_s),
                   help=f"batch {status.get('batch_id')}, {utc(sources.parse_utc(status.get('last_progress_utc')))}")
    cols[2].metric("Rows written", number(totals.get("written")), help=f"rows in: {number(totals.get('rows_in'))}")
    cols[3].metric("Dead letters", number(totals.get("dead_letters")))
    cols[4].metric("Restarts", number(state.restarts))
    with st.expander("Stream details"):
        ingest = state.ingest or {}
        st.markdown(
            f"**State** {status.get('state', '–')} · **status updated** {age(verdict.update_age_s)} ago · "
            f"**batches** {number(totals.get('batches'))} · **duplicates** {number(totals.get('duplicates'))} · "
            f"**late rows dropped** {number(totals.get('late_rows_dropped'))} · **latency p50/p95** "
            f"{number((status.get('latency_ms') or {}).get('p50'))} / "
            f"{number((status.get('latency_ms') or {}).get('p95'))} ms")
        st.markdown(
            f"**Ingest** {ingest.get('source', '–')} ({'running' if ingest.get('running') else 'not running'}) · "
            f"**posts** {number(ingest.get('posts'))} · **bad** {number(ingest.get('bad'))} · "
            f"**errors** {number(ingest.get('errors'))} · **last post** {ingest.get('last_post_at') or '–'}")
        if ingest.get("last_error"):
            st.caption(f"Ingest's last error: {ingest['last_error']}")
        if state.restart_events:
            st.caption("Recent restarts")
            st.table(pd.DataFrame(state.restart_events), hide_index=True)
        if status.get("error"):
            st.error(status["error"])


def _naive(frame: pd.DataFrame) -> pd.DataFrame:
    """Times as naive UTC, so the charts print UTC whatever the browser's time zone."""
    return frame.assign(bucket=frame["bucket"].dt.tz_convert("UTC").dt.tz_localize(None))


def _charts(series, start, end, bucket_s, chosen, ctx: Context) -> None:
    line = summary.timeline(series, start, end, bucket_s, keywords=chosen,
                            rolling=ctx.settings.dashboard.rolling_buckets)
    counts = _naive(summary.long_counts(line))
    x = alt.X("bucket:T", title="time (UTC)")
    stacked = alt.Chart(counts).mark_bar().encode(
        x=x, y=alt.Y("posts:Q", title="posts", stack="zero"),
        color=alt.Color("label:N", scale=_COLOURS, sort=_LABELS, title=None),
        tooltip=[alt.Tooltip("bucket:T", format="%Y-%m-%d %H:%M:%S"), "label:N", "posts:Q",
                 alt.Tooltip("share:Q", format=".1%")])
    shares = alt.Chart(counts).mark_bar().encode(
        x=x, y=alt.Y("posts:Q", title="share", stack="normalize", axis=alt.Axis(format="%")),
        color=alt.Color("label:N", scale=_COLOURS, sort=_LABELS, title=None))
    left, right = st.columns(2)
    left.caption("Posts per bucket by label")
    left.altair_chart(stacked.properties(height=240), width="stretch")
    right.caption("Shares per bucket")
    right.altair_chart(shares.properties(height=240), width="stretch")
    means = _naive(line[["bucket", "mean_p", "rolling_p"]]).melt("bucket", var_name="measure", value_name="p")
    means["measure"] = means["measure"].map({"mean_p": "bucket mean",
                                             "rolling_p": f"rolling mean ({ctx.settings.dashboard.rolling_buckets})"})
    p_chart = alt.Chart(means.dropna()).mark_line(point=False).encode(
        x=x, y=alt.Y("p:Q", title="P(positive)", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("measure:N", title=None), strokeDash=alt.StrokeDash("measure:N", legend=None))
    rolling = ctx.settings.dashboard.rolling_buckets
    by_keyword = _naive(summary.keyword_shares(series, start, end, bucket_s, keywords=chosen, rolling=rolling))
    k_chart = alt.Chart(by_keyword.dropna(subset=["share_Positive"])).mark_line().encode(
        x=x, y=alt.Y("share_Positive:Q", title="share Positive", axis=alt.Axis(format="%"),
                     scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("keyword:N", title="keyword"), tooltip=["keyword:N", "posts:Q",
                                                                alt.Tooltip("share_Positive:Q", format=".1%")])
    left, right = st.columns(2)
    left.caption("Mean P(positive): per bucket and rolling")
    left.altair_chart(p_chart.properties(height=240), width="stretch")
    right.caption(f"Share Positive per keyword over the last {rolling} buckets (the 10 busiest)")
    right.altair_chart(k_chart.properties(height=240), width="stretch")


def _format_totals(table: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"keyword": table["keyword"], "posts": table["posts"].map(number)})
    for label in _LABELS:
        out[label] = table[label].map(number)
        out[f"{label} %"] = table[f"share_{label}"].map(percent)
    out["mean P(positive)"] = table["mean_p"].map(lambda v: number(None if pd.isna(v) else v, 3))
    return out


def _posts(posts: pd.DataFrame) -> None:
    view = pd.DataFrame({
        "time (UTC)": posts["ingest_ts"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M:%S"),
        "keyword": posts["keyword"].fillna(summary.NO_KEYWORD),
        "label": posts["label"],
        "P(positive)": posts["p_positive"],
        "scores": posts["scores"].map(summary.format_scores) if "scores" in posts else "",
        "text": posts["text"],
        "model": posts["model"],
    })
    st.dataframe(view, hide_index=True, width="stretch", height=420, column_config={
        "P(positive)": st.column_config.ProgressColumn("P(positive)", min_value=0.0, max_value=1.0, format="%.3f"),
        "text": st.column_config.TextColumn("text", width="large"),
    })
