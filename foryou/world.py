"""The synthetic world: the ONE generator of users, posts, social graph, impressions and
engagements that seed, demo, training tests, end-to-end tests and benchmarks all use.

Hidden ground truth, planted so that a model can learn it from ids alone:
- every user has a `taste` over topics (a couple of loved topics, one disliked, noise);
- every author mostly writes about their own `primary_topic`, so an author id carries topic;
- every post has one hidden topic (`post_topic`) and its text contains words of that topic;
- the chance of each action on an impression rises (negative actions: fall) with the user's
  taste for the post's topic, plus a low-rank user-author affinity, author quality and a
  bonus for followed authors, with per-impression noise so it is learnable but not trivial.

Everything is deterministic for a seed (one numpy Generator, fixed draw order).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
from google.protobuf.message import Message

from foryou import snowflake, topics
from foryou_protos import common_pb2, events_pb2
from foryou.world_draws import (  # noqa: F401 (DAY_MS, TOPIC_WORDS, NUM_ACTIONS: the world's public facts)
    DAY_MS, FIRST_NAMES, MINUTE_MS, NUM_ACTIONS, TOPIC_WORDS, Impressions, Posts, draw_actions, make_follows, make_impressions,
    make_posts, make_users, post_texts, topic_vocabulary, user_setup)



@dataclass(frozen=True)
class WorldConfig:
    num_users: int = 500
    num_topics: int = 16
    days: float = 2.0                       # every timestamp lies within the last `days`
    posts_per_user_per_day: float = 1.5     # mean; per-user rates are heavy-tailed (lognormal)
    mean_following: int = 30                # out-degree mean; in-degree is heavy-tailed
    impressions_per_user: int = 100         # mean served posts per user (varies by user)
    session_size: int = 10                  # posts served per request
    in_network_share: float = 0.5           # served posts from followed authors, when available
    seed: int = 0
    now_ms: int | None = None               # default: the current time
    reply_fraction: float = 0.15
    repost_fraction: float = 0.08
    quote_fraction: float = 0.05
    video_fraction: float = 0.10
    photo_fraction: float = 0.20
    subscriber_only_fraction: float = 0.03
    labelled_fraction: float = 0.02
    deleted_fraction: float = 0.02
    block_fraction: float = 0.05            # users who block a few accounts up front
    mute_fraction: float = 0.05             # users who mute a few accounts up front
    muted_keyword_fraction: float = 0.05    # users who mute a word of their disliked topic
    subscribe_fraction: float = 0.10        # users who subscribe to a followed author
    on_topic_share: float = 0.92            # share of an author's posts on their primary topic
    taste_strength: float = 2.0             # slope of interest on taste: the planted signal
    noise: float = 0.5                      # std of per-impression interest noise

    def __post_init__(self) -> None:
        if self.num_users < 2:
            raise ValueError("num_users must be at least 2")
        if not 1 <= self.num_topics:
            raise ValueError("num_topics must be positive")
        if self.days <= 0:
            raise ValueError("days must be positive")


@dataclass(frozen=True)
class UserSpec:
    user_id: int
    handle: str
    display_name: str
    verified: bool
    taste: np.ndarray          # [num_topics], hidden: interest in each topic
    primary_topic: int         # what they mostly write about
    posts_per_day: float       # their posting rate


@dataclass(frozen=True)
class Oracle:
    """The probability with which the world drew each action of each impression (a user is
    never shown a post twice, so (user, post) names an impression). No model can beat it on
    the world's labels: its AUC is the ceiling of the evaluation (phoenix/evaluation)."""
    user_ids: np.ndarray   # [I] uint64
    post_ids: np.ndarray   # [I] uint64
    probs: np.ndarray      # [I, NUM_ACTIONS] float32, model action order

    def save(self, path) -> None:
        """An .npz beside an exported event file (`foryou eval` picks up FILE.oracle.npz)."""
        with open(path, "wb") as fh:
            np.savez_compressed(fh, user_ids=self.user_ids, post_ids=self.post_ids, probs=self.probs)

    @classmethod
    def load(cls, path) -> "Oracle":
        with np.load(path) as z:
            return cls(z["user_ids"], z["post_ids"], z["probs"])


def oracle_path(events_file) -> str:
    return f"{events_file}.oracle.npz"


@dataclass
class World:
    config: WorldConfig
    now_ms: int
    start_ms: int                            # earliest timestamp of any event
    topic_names: list[str]
    topic_words: list[tuple[str, ...]]
    users: list[UserSpec]
    follows: dict[int, set[int]]             # final state: user -> followed user ids
    blocks: dict[int, set[int]]
    mutes: dict[int, set[int]]
    muted_keywords: dict[int, set[str]]
    subscriptions: dict[int, set[int]]
    posts: list[common_pb2.Post]             # time-ordered; `deleted`/`labels` show final state
    post_topic: dict[int, int]
    post_events: list[events_pb2.PostEvent]
    user_events: list[events_pb2.UserEvent]
    served: list[events_pb2.ServedEvent]
    engagements: list[common_pb2.Engagement]
    oracle: "Oracle | None" = None           # every impression's true action probabilities
    _post_index: dict[int, common_pb2.Post] = field(default_factory=dict, repr=False)

    def user(self, user_id: int) -> UserSpec:
        return self.users[user_id - 1]

    def post(self, post_id: int) -> common_pb2.Post:
        if not self._post_index:
            self._post_index = {p.post_id: p for p in self.posts}
        return self._post_index[post_id]

    def topic_affinity(self, user_id: int, post_id: int) -> float:
        """Ground truth: the user's hidden taste for the post's topic."""
        return float(self.user(user_id).taste[self.post_topic[post_id]])

    def events(self) -> Iterator[tuple[str, Message]]:
        """Every event as (topic name, message), in time order (ties: users, posts, served,
        engagements, so a follow precedes the posts it makes visible)."""
        streams = [
            ((e.timestamp_ms, 0, i, topics.USERS, e) for i, e in enumerate(self.user_events)),
            ((_post_event_ms(e), 1, i, topics.POSTS, e) for i, e in enumerate(self.post_events)),
            ((e.served_at_ms, 2, i, topics.SERVED, e) for i, e in enumerate(self.served)),
            ((e.timestamp_ms, 3, i, topics.ENGAGEMENTS, e) for i, e in enumerate(self.engagements)),
        ]
        for _, _, _, topic, message in heapq.merge(*streams, key=lambda t: t[:3]):
            yield topic, message

    def num_events(self) -> int:
        return len(self.user_events) + len(self.post_events) + len(self.served) + len(self.engagements)


def _post_event_ms(event: events_pb2.PostEvent) -> int:
    kind = event.WhichOneof("event")
    if kind == "created":
        return event.created.created_at_ms
    if kind == "deleted":
        return event.deleted.deleted_at_ms
    return event.labelled.labelled_at_ms


def generate_world(config: WorldConfig) -> World:
    """Deterministic for `config` (including `now_ms`; the default `now_ms` is the clock)."""
    cfg = config
    rng = np.random.default_rng(cfg.seed)
    now = snowflake.now_ms() if cfg.now_ms is None else int(cfg.now_ms)
    span = int(cfg.days * DAY_MS)
    # a small margin at both ends: events stay inside the window while the world is seeded
    start = now - span + min(span // 50, 30 * MINUTE_MS)
    end = now - min(span // 100, 5 * MINUTE_MS)
    topic_names, topic_words = topic_vocabulary(cfg.num_topics)

    us = make_users(rng, cfg)
    follows = make_follows(rng, cfg, us)
    blocks, mutes, muted_words, subs = user_setup(rng, cfg, us, follows)
    first = rng.integers(0, len(FIRST_NAMES), size=cfg.num_users)
    handles = [f"{FIRST_NAMES[f]}_{topic_names[t][:5]}{i + 1}" for i, (f, t) in enumerate(zip(first, us.primary_topic))]
    ps = make_posts(rng, cfg, us, start, end)
    texts = post_texts(rng, ps, topic_names, topic_words, handles)
    excluded = [blocks[u] | mutes[u] for u in range(cfg.num_users)]
    lowered = [t.lower() for t in texts]
    muted_posts = [np.array([any(topic_words[t][k] in text for t, k in muted_words[u]) for text in lowered], dtype=bool)
                   if muted_words[u] else None for u in range(cfg.num_users)]
    imp = make_impressions(rng, cfg, us, ps, follows, subs, excluded, muted_posts, start, end)
    actions, dwell, probs = draw_actions(rng, cfg, us, ps, imp)
    delay = rng.integers(1_000, 4 * MINUTE_MS, size=len(imp.post))
    surfaces = rng.choice([common_pb2.HOME_FOR_YOU, common_pb2.HOME_FOLLOWING, common_pb2.PROFILE,
                           common_pb2.CONVERSATION], p=[0.8, 0.1, 0.05, 0.05], size=len(imp.post))
    surfaces = np.where(~imp.followed & (surfaces == common_pb2.HOME_FOLLOWING), common_pb2.HOME_FOR_YOU, surfaces)

    uid = us.ids
    users = [UserSpec(int(uid[u]), handles[u], f"{FIRST_NAMES[first[u]].title()} {u + 1}", bool(us.verified[u]),
                      us.taste[u].copy(), int(us.primary_topic[u]), float(us.rate[u])) for u in range(cfg.num_users)]
    post_ids = snowflake.make_ids(ps.time, np.arange(len(ps.time))).tolist()

    posts, post_events = _post_messages(ps, post_ids, uid, texts)
    user_events = _setup_events(cfg, users, follows, blocks, mutes, muted_words, subs, topic_words, start, uid)
    served = [events_pb2.ServedEvent(user_id=int(uid[u]), request_id=f"world-{cfg.seed}-{s}",
                                     post_ids=[post_ids[c] for c in chosen], served_at_ms=t)
              for s, (u, t, chosen) in enumerate(imp.sessions)]
    served.sort(key=lambda e: e.served_at_ms)

    follow_sets = {int(uid[u]): {int(uid[a]) for a in follows[u]} for u in range(cfg.num_users)}
    block_sets = {int(uid[u]): {int(uid[a]) for a in blocks[u]} for u in range(cfg.num_users)}
    mute_sets = {int(uid[u]): {int(uid[a]) for a in mutes[u]} for u in range(cfg.num_users)}
    engagements, reaction_events = _engagement_events(imp, ps, actions, dwell, delay, surfaces, uid, post_ids, now,
                                                      (follow_sets, block_sets, mute_sets))

    return World(
        config=cfg, now_ms=now, start_ms=start, topic_names=topic_names, topic_words=topic_words,
        users=users, follows=follow_sets, blocks=block_sets, mutes=mute_sets,
        muted_keywords={int(uid[u]): {topic_words[t][k] for t, k in muted_words[u]} for u in range(cfg.num_users)},
        subscriptions={int(uid[u]): {int(uid[a]) for a in subs[u]} for u in range(cfg.num_users)},
        posts=posts, post_topic={post_ids[i]: int(ps.topic[i]) for i in range(len(post_ids))},
        post_events=post_events, user_events=user_events + reaction_events,
        served=served, engagements=engagements,
        oracle=Oracle(uid[imp.user].astype(np.uint64), np.asarray(post_ids, np.uint64)[imp.post] if len(imp.post)
                      else np.zeros(0, np.uint64), probs.astype(np.float32)),
    )


def _engagement_events(imp: Impressions, ps: Posts, actions: np.ndarray, dwell: np.ndarray, delay: np.ndarray,
                       surfaces: np.ndarray, uid: np.ndarray, post_ids: list[int], now: int,
                       graph: tuple[dict, dict, dict]) -> tuple[list[common_pb2.Engagement], list[events_pb2.UserEvent]]:
    """The engagements of every impression with an action, time-ordered, and the graph changes
    (follows, blocks, mutes) they cause; `graph`: the follow, block and mute sets by user id."""
    follow_sets, block_sets, mute_sets = graph
    engagements, reaction_events = [], []
    acted = np.flatnonzero(actions.any(axis=1))
    action_values = np.arange(1, NUM_ACTIONS + 1)
    for i in acted:
        u, pi = int(imp.user[i]), int(imp.post[i])
        user_id, author_id = int(uid[u]), int(uid[ps.author[pi]])
        ts = int(min(imp.time[i] + delay[i], now - 1))
        acts = action_values[actions[i]]
        engagements.append(common_pb2.Engagement(
            user_id=user_id, post_id=post_ids[pi], post_author_id=author_id, actions=acts.tolist(),
            surface=int(surfaces[i]),  # type: ignore[arg-type]
            dwell_time_ms=int(dwell[i]), timestamp_ms=ts))
        reaction_events.extend(_graph_reactions(user_id, author_id, set(acts.tolist()), min(ts + 1, now),
                                                follow_sets, block_sets, mute_sets))
    engagements.sort(key=lambda e: e.timestamp_ms)
    reaction_events.sort(key=lambda e: e.timestamp_ms)
    return engagements, reaction_events


def _graph_reactions(user_id: int, author_id: int, acts: set[int], ts: int, follow_sets, block_sets,
                     mute_sets) -> list[events_pb2.UserEvent]:
    """Graph actions taken from the feed change the social graph too (and the ground truth)."""
    out = []
    if common_pb2.FOLLOW_AUTHOR in acts and author_id not in follow_sets[user_id]:
        follow_sets[user_id].add(author_id)
        out.append(events_pb2.UserEvent(user_id=user_id, timestamp_ms=ts, follow=author_id))
    if common_pb2.BLOCK_AUTHOR in acts and author_id not in block_sets[user_id]:
        if author_id in follow_sets[user_id]:  # blocking someone ends following them
            follow_sets[user_id].discard(author_id)
            out.append(events_pb2.UserEvent(user_id=user_id, timestamp_ms=ts, unfollow=author_id))
        block_sets[user_id].add(author_id)
        out.append(events_pb2.UserEvent(user_id=user_id, timestamp_ms=ts, block=author_id))
    if common_pb2.MUTE_AUTHOR in acts and author_id not in mute_sets[user_id]:
        mute_sets[user_id].add(author_id)
        out.append(events_pb2.UserEvent(user_id=user_id, timestamp_ms=ts, mute=author_id))
    return out


def _post_messages(ps: Posts, post_ids: list[int], uid: np.ndarray, texts: list[str]):
    never = np.iinfo(np.int64).max
    posts: list[common_pb2.Post] = []
    conversation: list[int] = []
    events: list[events_pb2.PostEvent] = []
    for i, pid in enumerate(post_ids):
        parent = int(ps.parent[i])
        post = common_pb2.Post(post_id=pid, author_id=int(uid[ps.author[i]]), created_at_ms=int(ps.time[i]),
                               text=texts[i], photo_count=int(ps.photos[i]), video_duration_ms=int(ps.video_ms[i]),
                               subscriber_only=bool(ps.sub_only[i]))
        root = pid
        if ps.kind[i] == 1:
            post.in_reply_to_post_id = post_ids[parent]
            post.in_reply_to_user_id = int(uid[ps.author[parent]])
            root = conversation[parent]
        elif ps.kind[i] == 2:
            post.repost_of_post_id = post_ids[parent]
            post.repost_of_user_id = int(uid[ps.author[parent]])
        elif ps.kind[i] == 3:
            post.quote_of_post_id = post_ids[parent]
        post.conversation_id = root
        conversation.append(root)
        events.append(events_pb2.PostEvent(created=post))
        final = common_pb2.Post()
        final.CopyFrom(post)
        if ps.deleted_at[i] != never:
            final.deleted = True
            events.append(events_pb2.PostEvent(deleted=events_pb2.PostDeleted(
                post_id=pid, author_id=post.author_id, deleted_at_ms=int(ps.deleted_at[i]))))
        if ps.labelled_at[i] != never:
            final.labels.append(int(ps.label[i]))
            events.append(events_pb2.PostEvent(labelled=events_pb2.PostLabelled(
                post_id=pid, labels=[int(ps.label[i])],  # type: ignore[list-item]
                labelled_at_ms=int(ps.labelled_at[i]))))
        posts.append(final)
    events.sort(key=_post_event_ms)
    return posts, events


def _setup_events(cfg, users, follows, blocks, mutes, muted_words, subs, topic_words, start, uid):
    """Profiles and the initial graph, all at the start of the window (before any post)."""
    events: list[events_pb2.UserEvent] = []
    t0 = start
    for u, spec in enumerate(users):
        events.append(events_pb2.UserEvent(user_id=spec.user_id, timestamp_ms=t0, profile=events_pb2.Profile(
            handle=spec.handle, display_name=spec.display_name, verified=spec.verified)))
    t1 = t0 + 1
    for u in range(cfg.num_users):
        me = int(uid[u])
        events.extend(events_pb2.UserEvent(user_id=me, timestamp_ms=t1, follow=int(uid[a])) for a in sorted(follows[u]))
        events.extend(events_pb2.UserEvent(user_id=me, timestamp_ms=t1, block=int(uid[a])) for a in sorted(blocks[u]))
        events.extend(events_pb2.UserEvent(user_id=me, timestamp_ms=t1, mute=int(uid[a])) for a in sorted(mutes[u]))
        events.extend(events_pb2.UserEvent(user_id=me, timestamp_ms=t1, mute_keyword=topic_words[t][k])
                      for t, k in sorted(muted_words[u]))
        events.extend(events_pb2.UserEvent(user_id=me, timestamp_ms=t1, subscribe=int(uid[a])) for a in sorted(subs[u]))
    return events
