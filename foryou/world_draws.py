"""The synthetic world's draws: users, follows, posts, impressions and their actions, each a
step of `foryou.world.generate_world` (one numpy Generator, fixed draw order), and the
vocabulary and action rates they draw from."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from foryou_protos import common_pb2
from phoenix.actions import NUM_BINARY_ACTIONS, action_index_of

if TYPE_CHECKING:
    from foryou.world import WorldConfig

DAY_MS = 24 * 3600 * 1000
MINUTE_MS = 60 * 1000

# Words of each topic; a post's text holds three words of its topic, so keyword mutes bite.
TOPIC_WORDS: list[tuple[str, tuple[str, ...]]] = [
    ("football", ("goal", "striker", "penalty", "derby", "league", "keeper")),
    ("jazz", ("saxophone", "trumpet", "bebop", "improv", "quartet", "swing")),
    ("cooking", ("recipe", "garlic", "oven", "sourdough", "spices", "simmer")),
    ("astronomy", ("telescope", "nebula", "galaxy", "comet", "orbit", "eclipse")),
    ("programming", ("python", "compiler", "refactor", "debugging", "async", "rustc")),
    ("gardening", ("tomatoes", "compost", "seedlings", "pruning", "mulch", "orchids")),
    ("finance", ("stocks", "dividends", "inflation", "bonds", "portfolio", "earnings")),
    ("gaming", ("speedrun", "boss", "controller", "quest", "multiplayer", "pixel")),
    ("fitness", ("deadlift", "marathon", "protein", "stretching", "cardio", "squats")),
    ("movies", ("director", "screenplay", "trailer", "cinema", "sequel", "premiere")),
    ("travel", ("passport", "hostel", "itinerary", "backpacking", "airport", "island")),
    ("photography", ("aperture", "lens", "tripod", "exposure", "portrait", "shutter")),
    ("politics", ("election", "senate", "policy", "ballot", "debate", "campaign")),
    ("science", ("experiment", "molecule", "physics", "genome", "laboratory", "hypothesis")),
    ("fashion", ("runway", "denim", "sneakers", "vintage", "tailoring", "couture")),
    ("pets", ("puppy", "kitten", "leash", "adoption", "vet", "aquarium")),
]
_OPENERS = ("Thinking about", "Hot take on", "Loving the", "Can't stop talking about",
            "Quick thread on", "Unpopular opinion:", "Today's", "New post about")
_JOINERS = ("and", "with", "versus", "plus", "beyond", "after")
FIRST_NAMES = ("maya", "leo", "ada", "omar", "zoe", "ivan", "nina", "kai", "sara", "theo",
                "lina", "yuki", "ravi", "emma", "jonas", "aisha", "paul", "mei", "diego", "ines")

POSITIVE_ACTIONS = (
    "FAVORITE", "REPLY", "REPOST", "PHOTO_EXPAND", "CLICK", "PROFILE_CLICK", "VIDEO_QUALITY_VIEW",
    "SHARE", "SHARE_VIA_DM", "SHARE_VIA_COPY_LINK", "DWELL", "QUOTE", "QUOTED_CLICK", "FOLLOW_AUTHOR",
)
NEGATIVE_ACTIONS = ("NOT_INTERESTED", "BLOCK_AUTHOR", "MUTE_AUTHOR", "REPORT")
NUM_ACTIONS = NUM_BINARY_ACTIONS   # the world draws engagement actions, not dwell_time
# action -> (logit bias, slope on the hidden interest). Negative actions use -slope.
_ACTION_LOGITS: dict[str, tuple[float, float]] = {
    "FAVORITE": (-4.8, 1.6), "REPLY": (-6.0, 1.2), "REPOST": (-5.4, 1.3),
    "PHOTO_EXPAND": (-2.8, 1.0), "CLICK": (-3.4, 1.0), "PROFILE_CLICK": (-5.0, 1.0),
    "VIDEO_QUALITY_VIEW": (-2.0, 1.0), "SHARE": (-6.6, 1.1), "SHARE_VIA_DM": (-7.0, 1.1),
    "SHARE_VIA_COPY_LINK": (-7.0, 1.1), "DWELL": (-2.6, 1.2), "QUOTE": (-7.0, 1.2),
    "QUOTED_CLICK": (-3.4, 1.0), "FOLLOW_AUTHOR": (-6.5, 1.2),
    "NOT_INTERESTED": (-4.4, 1.2), "BLOCK_AUTHOR": (-7.5, 1.0), "MUTE_AUTHOR": (-7.0, 1.0),
    "REPORT": (-7.5, 0.8),
}
_LABELS = (common_pb2.SPAM, common_pb2.VIOLENCE, common_pb2.GORE, common_pb2.NSFW,
           common_pb2.HATE, common_pb2.ABUSE, common_pb2.MISINFORMATION)


action_index = action_index_of


def topic_vocabulary(num_topics: int) -> tuple[list[str], list[tuple[str, ...]]]:
    names, words = [], []
    for t in range(num_topics):
        if t < len(TOPIC_WORDS):
            name, ws = TOPIC_WORDS[t]
        else:  # more topics than themes: invented but distinct words
            name, ws = f"topic{t}", tuple(f"t{t}word{j}" for j in range(6))
        names.append(name)
        words.append(ws)
    return names, words


def _weighted_sample_rows(rng: np.random.Generator, log_weights: np.ndarray, k: np.ndarray) -> list[np.ndarray]:
    """Per row, k[row] column indices sampled without replacement with probability
    proportional to exp(log_weights) (Gumbel top-k)."""
    keys = log_weights + rng.gumbel(size=log_weights.shape)
    order = np.argsort(-keys, axis=1)
    return [order[r, : k[r]] for r in range(len(k))]


# ----------------------------------------------------------------------------- generation


@dataclass
class Users:
    ids: np.ndarray            # [U] user ids (1..U)
    taste: np.ndarray          # [U, T]
    primary_topic: np.ndarray  # [U]
    rate: np.ndarray           # [U] posts per day
    popularity: np.ndarray     # [U] log weight of being followed / served
    quality: np.ndarray        # [U] author quality (engagement bonus)
    affinity_vec: np.ndarray   # [U, 4] low-rank user-author affinity
    verified: np.ndarray       # [U] bool


def make_users(rng: np.random.Generator, cfg: WorldConfig) -> Users:
    n, t = cfg.num_users, cfg.num_topics
    topic_pop = 1.0 / np.arange(1, t + 1) ** 0.6          # some topics are more popular
    topic_pop = rng.permutation(topic_pop / topic_pop.sum())
    taste = rng.normal(0.0, 0.5, size=(n, t))
    for _ in range(2):                                    # two loved topics each
        loved = rng.choice(t, size=n, p=topic_pop)
        taste[np.arange(n), loved] += 2.0
    disliked = rng.integers(0, t, size=n)
    taste[np.arange(n), disliked] -= 1.5
    # authors write about something they love (mostly)
    primary = np.argmax(taste + rng.gumbel(scale=0.3, size=(n, t)), axis=1)
    rate = cfg.posts_per_user_per_day * rng.lognormal(0.0, 1.0, size=n) / np.exp(0.5)
    popularity = rng.pareto(1.5, size=n)                  # heavy tail of famous accounts
    popularity = np.log1p(popularity) * 1.5
    quality = rng.normal(0.0, 0.4, size=n)
    affinity_vec = rng.normal(0.0, 0.45, size=(n, 4))
    verified = (popularity >= np.quantile(popularity, 0.95)) | (rng.random(n) < 0.02)
    return Users(np.arange(1, n + 1, dtype=np.int64), taste, primary, rate, popularity, quality,
                  affinity_vec, verified)


def make_follows(rng: np.random.Generator, cfg: WorldConfig, us: Users) -> list[np.ndarray]:
    """Per user (index), followed user indices: popular authors and authors on loved topics."""
    n = cfg.num_users
    out_deg = np.clip(rng.lognormal(np.log(max(cfg.mean_following, 1)) - 0.32, 0.8, size=n), 1,
                      min(n - 1, 8 * max(cfg.mean_following, 1))).astype(int)
    follows: list[np.ndarray] = []
    for lo in range(0, n, 512):  # chunks bound memory at 512 x n
        hi = min(lo + 512, n)
        logw = us.popularity[None, :] + 0.8 * us.taste[lo:hi][:, us.primary_topic]
        logw[np.arange(hi - lo), np.arange(lo, hi)] = -np.inf       # nobody follows themselves
        follows.extend(_weighted_sample_rows(rng, logw, out_deg[lo:hi]))
    return follows


@dataclass
class Posts:
    author: np.ndarray         # [P] user index
    time: np.ndarray           # [P] created_at_ms, sorted
    topic: np.ndarray          # [P]
    words: np.ndarray          # [P, 3] word indices within the topic
    kind: np.ndarray           # [P] 0 original, 1 reply, 2 repost, 3 quote
    parent: np.ndarray         # [P] parent post index or -1
    video_ms: np.ndarray
    photos: np.ndarray
    sub_only: np.ndarray
    deleted_at: np.ndarray     # [P] ms, or int64 max
    labelled_at: np.ndarray    # [P] ms, or int64 max
    label: np.ndarray          # [P] VisibilityLabel value


def make_posts(rng: np.random.Generator, cfg: WorldConfig, us: Users, start: int, end: int) -> Posts:
    counts = rng.poisson(us.rate * cfg.days)
    author = np.repeat(np.arange(cfg.num_users), counts)
    p = len(author)
    time = rng.integers(start + MINUTE_MS, end, size=p)
    order = np.argsort(time, kind="stable")
    author, time = author[order], np.sort(time)
    on_topic = rng.random(p) < cfg.on_topic_share
    topic = np.where(on_topic, us.primary_topic[author], rng.integers(0, cfg.num_topics, size=p))
    words = np.argsort(rng.random((p, 6)), axis=1)[:, :3]
    u = rng.random(p)
    kind = np.zeros(p, dtype=np.int64)
    kind[u < cfg.reply_fraction] = 1
    kind[(u >= cfg.reply_fraction) & (u < cfg.reply_fraction + cfg.repost_fraction)] = 2
    q0 = cfg.reply_fraction + cfg.repost_fraction
    kind[(u >= q0) & (u < q0 + cfg.quote_fraction)] = 3
    # parents: a recent earlier post, preferring the same topic (replies stay on topic)
    parent = np.full(p, -1, dtype=np.int64)
    back = rng.integers(1, 200, size=p)
    for i in np.flatnonzero(kind > 0):
        if i == 0:
            kind[i] = 0
            continue
        lo = max(0, int(i) - int(back[i]) * 4)
        same = np.flatnonzero(topic[lo:i] == topic[i])
        j = lo + (int(same[-1 - int(back[i]) % len(same)]) if len(same) else int(back[i]) % (int(i) - lo))
        while parent[j] >= 0 and kind[j] == 2:    # repost/quote/reply of a repost: of its original
            j = parent[j]
        if author[j] == author[i] and kind[i] == 2:  # no self-reposts
            kind[i] = 0
            continue
        parent[i] = j
        topic[i] = topic[j]
        if kind[i] == 2:
            words[i] = words[j]  # a repost carries the original's text
    video_ms = np.where(rng.random(p) < cfg.video_fraction, rng.integers(5_000, 600_000, size=p), 0)
    photos = np.where((video_ms == 0) & (rng.random(p) < cfg.photo_fraction), rng.integers(1, 5, size=p), 0)
    video_ms[kind == 2] = 0
    photos[kind == 2] = 0
    sub_only = (kind == 0) & (rng.random(p) < cfg.subscriber_only_fraction)
    never = np.iinfo(np.int64).max
    span = np.maximum(end - time, 1)
    deleted_at = np.where(rng.random(p) < cfg.deleted_fraction, time + 1 + (rng.random(p) * span * 0.9).astype(np.int64), never)
    labelled_at = np.where(rng.random(p) < cfg.labelled_fraction, time + 1 + (rng.random(p) * span * 0.5).astype(np.int64), never)
    label = np.asarray(_LABELS)[rng.integers(0, len(_LABELS), size=p)]
    return Posts(author, time, topic, words, kind, parent, video_ms, photos, sub_only, deleted_at, labelled_at, label)


def post_texts(rng: np.random.Generator, ps: Posts, topic_names, topic_words, handles) -> list[str]:
    openers = rng.integers(0, len(_OPENERS), size=len(ps.time))
    joiners = rng.integers(0, len(_JOINERS), size=len(ps.time))
    texts: list[str] = []
    for i in range(len(ps.time)):
        t = int(ps.topic[i])
        w = [topic_words[t][int(k)] for k in ps.words[i]]
        own = f"{_OPENERS[openers[i]]} {w[0]} {_JOINERS[joiners[i]]} {w[1]}, {w[2]} #{topic_names[t]}"
        if ps.kind[i] == 2:  # a repost shows the original's text
            j = int(ps.parent[i])
            own = f"RT @{handles[ps.author[j]]}: {texts[j]}"
        elif ps.kind[i] == 1:
            own = f"@{handles[ps.author[ps.parent[i]]]} {own}"
        texts.append(own)
    return texts


@dataclass
class Impressions:
    user: np.ndarray    # [I] user index
    post: np.ndarray    # [I] post index
    time: np.ndarray    # [I] served_at_ms
    followed: np.ndarray
    session: np.ndarray  # [I] session number
    sessions: list[tuple[int, int, list[int]]]  # (user index, served_at_ms, post indices)


def make_impressions(rng: np.random.Generator, cfg: WorldConfig, us: Users, ps: Posts,
                      follows: list[np.ndarray], subs: list[set[int]], excluded_authors: list[set[int]],
                      muted_posts: list[np.ndarray | None], start: int, end: int) -> Impressions:
    n, p = cfg.num_users, len(ps.time)
    lookback = int(min(DAY_MS, (end - start) * 0.5))
    per_user = np.maximum(1, rng.poisson(cfg.impressions_per_user * rng.lognormal(0, 0.5, n) / np.exp(0.125)))
    n_sessions = np.maximum(1, np.round(per_user / cfg.session_size).astype(int))
    author_weight = np.exp(0.5 * us.popularity[ps.author]) if p else np.zeros(0)
    rows_user: list[np.ndarray] = []
    rows_post: list[np.ndarray] = []
    rows_time: list[np.ndarray] = []
    rows_fol: list[np.ndarray] = []
    rows_sess: list[np.ndarray] = []
    sessions: list = []
    for u in range(n):
        followed = np.zeros(n, dtype=bool)
        followed[follows[u]] = True
        post_followed = followed[ps.author]
        eligible = (ps.author != u) & (~ps.sub_only | np.isin(ps.author, list(subs[u])))
        if excluded_authors[u]:
            eligible &= ~np.isin(ps.author, list(excluded_authors[u]))
        muted = muted_posts[u]
        if muted is not None:
            eligible &= ~muted
        times = np.sort(rng.integers(start + (end - start) // 4, end - MINUTE_MS, size=n_sessions[u]))
        for s_time in times:
            lo, hi = np.searchsorted(ps.time, [s_time - lookback, s_time])
            window = slice(lo, hi)
            ok = eligible[window] & (ps.deleted_at[window] > s_time)
            cand_in = lo + np.flatnonzero(ok & post_followed[window])
            cand_out = lo + np.flatnonzero(ok & ~post_followed[window])
            k_in = min(len(cand_in), int(round(cfg.session_size * cfg.in_network_share)))
            k_out = min(len(cand_out), cfg.session_size - k_in)
            chosen_in = rng.choice(cand_in, size=k_in, replace=False) if k_in else cand_in[:0]
            if k_out:
                w = author_weight[cand_out]
                chosen_out = rng.choice(cand_out, size=k_out, replace=False, p=w / w.sum())
            else:
                chosen_out = cand_out[:0]
            chosen = np.concatenate([chosen_in, chosen_out])
            if not len(chosen):
                continue
            chosen = chosen[rng.permutation(len(chosen))]
            eligible[chosen] = False  # never served twice to the same user
            sess = len(sessions)
            sessions.append((u, int(s_time), [int(c) for c in chosen]))
            rows_user.append(np.full(len(chosen), u))
            rows_post.append(chosen)
            rows_time.append(np.full(len(chosen), s_time))
            rows_fol.append(post_followed[chosen])
            rows_sess.append(np.full(len(chosen), sess))
    def cat(rows: list[np.ndarray], dt: type) -> np.ndarray:
        return np.concatenate(rows).astype(dt) if rows else np.zeros(0, dt)

    return Impressions(cat(rows_user, np.int64), cat(rows_post, np.int64), cat(rows_time, np.int64),
                        cat(rows_fol, bool), cat(rows_sess, np.int64), sessions)


def interest_logit(cfg: WorldConfig, us: Users, ps: Posts, user: np.ndarray, post: np.ndarray,
                   followed: np.ndarray) -> np.ndarray:
    """The hidden, noise-free interest of users in posts (the planted signal)."""
    author = ps.author[post]
    taste = us.taste[user, ps.topic[post]]
    affinity = (us.affinity_vec[user] * us.affinity_vec[author]).sum(axis=1)
    return cfg.taste_strength * taste + affinity + us.quality[author] + 0.4 * followed


def draw_actions(rng: np.random.Generator, cfg: WorldConfig, us: Users, ps: Posts,
                  imp: Impressions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Multi-hot actions [I, NUM_ACTIONS], dwell times [I] and the probability [I, NUM_ACTIONS] with which each
    action was drawn, after the rules below (the oracle: the best any model could predict).
    The probabilities use no random draws, so the world's events do not depend on them."""
    i = len(imp.post)
    interest = interest_logit(cfg, us, ps, imp.user, imp.post, imp.followed) + rng.normal(0, cfg.noise, i)
    actions = np.zeros((i, NUM_ACTIONS), dtype=bool)
    probs = np.zeros((i, NUM_ACTIONS), dtype=np.float64)
    for name, (bias, slope) in _ACTION_LOGITS.items():
        sign = -1.0 if name in NEGATIVE_ACTIONS else 1.0
        logit = bias + sign * slope * interest
        if name == "REPORT":
            logit = logit + 4.0 * (ps.labelled_at[imp.post] < np.iinfo(np.int64).max)
        probs[:, action_index(name)] = 1.0 / (1.0 + np.exp(-logit))
        actions[:, action_index(name)] = rng.random(i) < probs[:, action_index(name)]
    # actions that need something to act on
    for name, possible in (("PHOTO_EXPAND", ps.photos[imp.post] > 0), ("VIDEO_QUALITY_VIEW", ps.video_ms[imp.post] > 0),
                           ("QUOTED_CLICK", ps.kind[imp.post] == 3), ("FOLLOW_AUTHOR", ~imp.followed)):
        actions[:, action_index(name)] &= possible
        probs[:, action_index(name)] *= possible
    # a negative reaction excludes positive ones
    neg_idx = [action_index(a) for a in NEGATIVE_ACTIONS]
    negative = actions[:, neg_idx].any(axis=1)
    pos_idx = [action_index(a) for a in POSITIVE_ACTIONS]
    actions[np.ix_(negative, np.array(pos_idx))] = False
    probs[:, pos_idx] *= np.prod(1.0 - probs[:, neg_idx], axis=1, keepdims=True)
    dwell = np.exp(8.0 + 0.5 * interest + rng.normal(0, 0.5, i)).astype(np.int64)  # ~3 s typical
    dwell = np.where(actions[:, action_index("DWELL")], dwell * 3, dwell)
    return actions, dwell, probs


def user_setup(rng: np.random.Generator, cfg: WorldConfig, us: Users, follows: list[np.ndarray]):
    """Up-front blocks, mutes, muted keywords (a word of the disliked topic) and subscriptions."""
    n = cfg.num_users
    blocks: list[set[int]] = [set() for _ in range(n)]
    mutes: list[set[int]] = [set() for _ in range(n)]
    words: list[set[tuple[int, int]]] = [set() for _ in range(n)]
    subs: list[set[int]] = [set() for _ in range(n)]
    disliked_topic = np.argmin(us.taste, axis=1)
    for u in np.flatnonzero(rng.random(n) < cfg.block_fraction):
        blocks[u] = {int(a) for a in rng.choice(n, size=3, replace=False) if a != u}
    for u in np.flatnonzero(rng.random(n) < cfg.mute_fraction):
        mutes[u] = {int(a) for a in rng.choice(n, size=3, replace=False) if a != u}
    for u in np.flatnonzero(rng.random(n) < cfg.muted_keyword_fraction):
        words[u] = {(int(disliked_topic[u]), int(rng.integers(0, 6)))}
    for u in np.flatnonzero(rng.random(n) < cfg.subscribe_fraction):
        if len(follows[u]):
            subs[u] = {int(a) for a in rng.choice(follows[u], size=min(2, len(follows[u])), replace=False)}
    for u in range(n):  # type: ignore[assignment]  # a followed author is never blocked or muted up front
        fol = set(int(a) for a in follows[u])
        blocks[u] -= fol
        mutes[u] -= fol
    return blocks, mutes, words, subs
