"""The sliding window continuous training (`foryou train --follow`, follow.py) trains on: the
events of the last `window_ms` by event time, kept as EventLog columns.

New events arrive as a small EventLog (what the Kafka reader built since the last round) plus
the ids deleted meanwhile (a deletion may name a post of an earlier round, which the small
log cannot mark). `merge` joins them into the window; `trim` drops what is older than the
newest event minus the window. Posts older than the window stay while a kept engagement,
served event or repost refers to them: the training examples need their author and text, as
Phoenix keeps a post's vector while it is in the corpus."""
from __future__ import annotations

import numpy as np

from foryou import snowflake
from phoenix.training.event_log import Engagements, EventLog, Posts, Served

_ENGAGEMENT_COLUMNS = ("user", "post", "author", "time", "actions", "dwell", "surface")


def empty() -> EventLog:
    """A window with no events yet."""
    u64, i64 = np.zeros(0, np.uint64), np.zeros(0, np.int64)
    return EventLog(Posts(u64, u64, u64, np.zeros(0, bool), []),
                    Engagements(u64, u64, u64, i64, u64, i64, np.zeros(0, np.int32)),
                    Served(u64, i64, np.zeros(1, np.int64), u64))


def merge(window: EventLog, new: EventLog, deleted=()) -> EventLog:
    """The window with the new events added (a post created again keeps its newest record, as
    the reader does) and the `deleted` post ids marked deleted."""
    posts = _merge_posts(window.posts, new.posts)
    row, known = posts.find(np.asarray(deleted, np.uint64))
    posts.deleted[row[known]] = True
    e_old, e_new = window.engagements, new.engagements
    engagements = Engagements(*(np.concatenate([getattr(e_old, c), getattr(e_new, c)]) for c in _ENGAGEMENT_COLUMNS))
    s_old, s_new = window.served, new.served
    served = Served(np.concatenate([s_old.user, s_new.user]), np.concatenate([s_old.time, s_new.time]),
                    np.concatenate([s_old.offsets, s_new.offsets[1:] + s_old.offsets[-1]]).astype(np.int64),
                    np.concatenate([s_old.posts, s_new.posts]))
    # both parts are in time order; a late record from Kafka may still interleave them
    return EventLog(posts, engagements.take(np.argsort(engagements.time, kind="stable")),
                    served.take(np.argsort(served.time, kind="stable")))


def _merge_posts(old: Posts, new: Posts) -> Posts:
    ids = np.concatenate([old.ids, new.ids])
    order = np.argsort(ids, kind="stable")  # a re-created id: the new record comes last
    last = np.ones(len(ids), bool)
    last[:-1] = ids[order][1:] != ids[order][:-1]
    rows = order[last]
    texts = old.texts + new.texts
    return Posts(ids[rows], np.concatenate([old.authors, new.authors])[rows],
                 np.concatenate([old.repost_of, new.repost_of])[rows],
                 np.concatenate([old.deleted, new.deleted])[rows].copy(), [texts[i] for i in rows],
                 np.concatenate([old.kind_codes(), new.kind_codes()])[rows])


def newest_ms(log: EventLog) -> int:
    """The time of the newest event: engagement, served event or post creation (0: none)."""
    times = [int(log.engagements.time.max()) if len(log.engagements) else 0,
             int(log.served.time.max()) if len(log.served) else 0,
             int(snowflake.created_at_ms_array(log.posts.ids).max()) if len(log.posts) else 0]
    return max(times)


def count_after(log: EventLog, ms: int) -> int:
    """Engagements and served events later than `ms`: what a round has not trained on."""
    return int((log.engagements.time > ms).sum() + (log.served.time > ms).sum())


def trim(log: EventLog, window_ms: int) -> EventLog:
    """The events at most `window_ms` older than the newest one (posts: see the module
    docstring). Unchanged when nothing is older."""
    cutoff = newest_ms(log) - window_ms
    keep_e = log.engagements.time >= cutoff
    keep_s = log.served.time >= cutoff
    created = snowflake.created_at_ms_array(log.posts.ids)
    if keep_e.all() and keep_s.all() and (created >= cutoff).all():
        return log
    engagements = log.engagements.take(np.flatnonzero(keep_e))
    served = log.served.take(np.flatnonzero(keep_s))
    fresh = created >= cutoff
    referred = np.concatenate([engagements.post, served.posts, log.posts.repost_of[fresh]])
    rows = np.flatnonzero(fresh | np.isin(log.posts.ids, referred))
    p = log.posts
    posts = Posts(p.ids[rows], p.authors[rows], p.repost_of[rows], p.deleted[rows], [p.texts[i] for i in rows],
                  p.kind_codes()[rows])
    return EventLog(posts, engagements, served)
