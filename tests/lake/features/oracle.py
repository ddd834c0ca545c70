"""An independent point-in-time join: pandas ``merge_asof`` per feature view, with TTL."""

from __future__ import annotations

import pandas as pd


def asof(entities: pd.DataFrame, source: pd.DataFrame, key: str, ts: str, features: list[str],
         ttl: pd.Timedelta | None, created: str | None = None) -> pd.DataFrame:
    """For each entity row: the latest source row at or before its time (created time breaks ties)."""
    left = entities.reset_index(names="__pos").sort_values("event_timestamp", kind="stable")
    order = [ts, created] if created else [ts]
    right = source.sort_values(order, kind="stable").rename(columns={ts: "__fts"})
    right = right[[key, "__fts", *features]]
    merged = pd.merge_asof(left, right, left_on="event_timestamp", right_on="__fts", by=key,
                           direction="backward", allow_exact_matches=True)
    if ttl is not None:
        stale = merged["__fts"] < merged["event_timestamp"] - ttl
        merged.loc[stale, features] = None
    return merged.sort_values("__pos").set_index("__pos")[features]
