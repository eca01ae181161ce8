"""Pure view models of the pages: feed cards with their explanations, tuning overrides and
moves, the pipeline's removed candidates and timings. No I/O here, so it is tested directly."""
from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from google.protobuf import json_format

from foryou_protos import home_mixer_pb2
from home_mixer.params import CONTINUOUS_OUTPUTS, DEFAULT_WEIGHTS, Params

NEGATIVE_ACTIONS = frozenset(name for name, weight in DEFAULT_WEIGHTS.items() if weight < 0)
# The explorer's own requests are not impressions: without this every page view would mark
# the feed as served in Thunder.
SIDE_EFFECT = "RecordServed"


@dataclass(frozen=True)
class Tunable:
    name: str            # the HomeMixer parameter name (ScoredPostsQuery.params key)
    label: str
    default: float
    low: float = 0.0     # slider range (the server checks the real bounds)
    high: float = 1.0
    step: float = 0.05
    slider: bool = True


_DEFAULTS = Params()
SCALAR_TUNABLES: tuple[Tunable, ...] = (
    Tunable("oon_factor", "out-of-network factor", _DEFAULTS.oon_factor, 0.0, 1.5),
    Tunable("diversity_decay", "author diversity decay", _DEFAULTS.diversity_decay),
    Tunable("diversity_floor", "author diversity floor", _DEFAULTS.diversity_floor),
    Tunable("result_size", "result size", _DEFAULTS.result_size, 1, 100, 1),
)
WEIGHT_TUNABLES: tuple[Tunable, ...] = tuple(
    Tunable(f"weight.{name}", name, weight, slider=False) for name, weight in DEFAULT_WEIGHTS.items())
TUNABLES = SCALAR_TUNABLES + WEIGHT_TUNABLES


@dataclass
class Tuning:
    """A request's overrides as the tuning form holds them."""
    values: dict[str, str] = field(default_factory=dict)      # field name -> text shown in the form
    overrides: dict[str, float] = field(default_factory=dict)  # only the values that differ from defaults
    disabled: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)       # field name -> message shown next to it

    @property
    def active(self) -> bool:
        return bool(self.overrides or self.disabled)

    @property
    def touches_weights(self) -> bool:
        return any(name.startswith("weight.") for name in [*self.overrides, *self.errors])

    def query_string(self) -> str:
        from urllib.parse import urlencode
        pairs = [(name, f"{value:g}") for name, value in self.overrides.items()]
        pairs += [("off", name) for name in self.disabled]
        return urlencode(pairs)


def parse_tuning(form: Mapping[str, str], disabled: Sequence[str] = ()) -> Tuning:
    """Form fields -> overrides. Empty means the default; only non-numbers are refused here,
    everything else (ranges, integers) is for HomeMixer to judge."""
    tuning = Tuning(disabled=sorted({d for d in disabled if d}))
    for tunable in TUNABLES:
        text = (form.get(tunable.name) or "").strip()
        tuning.values[tunable.name] = text or f"{tunable.default:g}"
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            tuning.errors[tunable.name] = f"{tunable.name}: {text!r} is not a number"
            continue
        if not (math.isfinite(value) and value == tunable.default):
            tuning.overrides[tunable.name] = value
    return tuning


def field_of_error(message: str) -> str | None:
    """Which form field HomeMixer's INVALID_ARGUMENT message is about, e.g.
    "params.diversity_decay must be in [0, 1], got 2" -> "diversity_decay"."""
    import re
    for pattern in (r"params\.([\w.]+?) must", r"unknown parameter '([^']+)'"):
        found = re.search(pattern, message)
        if found:
            return found.group(1)
    if message.startswith("disabled_components"):
        return "off"
    return None


def weights_of(overrides: Mapping[str, float]) -> dict[str, float]:
    weights = dict(DEFAULT_WEIGHTS)
    for name, value in overrides.items():
        if name.startswith("weight."):
            weights[name[len("weight."):]] = value
    return weights


def build_query(user_id: int, tuning: Tuning | None = None, debug: bool = False,
                record_served: bool = False) -> home_mixer_pb2.ScoredPostsQuery:
    tuning = tuning or Tuning()
    disabled = list(tuning.disabled)
    if not record_served and SIDE_EFFECT not in disabled:
        disabled.append(SIDE_EFFECT)
    return home_mixer_pb2.ScoredPostsQuery(viewer_id=user_id, params=tuning.overrides, disabled_components=disabled,
                                           debug=debug)


def reproduce(query: home_mixer_pb2.ScoredPostsQuery, address: str) -> tuple[str, str]:
    """(JSON body, grpcurl command) that send the same request (HomeMixer serves reflection)."""
    body = json.dumps(json_format.MessageToDict(query, preserving_proto_field_name=True), sort_keys=True)
    command = f"grpcurl -plaintext -d {shlex.quote(body)} {address} foryou.ScoredPostsService/GetScoredPosts"
    return json.dumps(json.loads(body), indent=2, sort_keys=True), command


# ---------------------------------------------------------------------------- feed cards


@dataclass
class ActionBar:
    name: str
    probability: float
    weight: float
    negative: bool

    @property
    def percent(self) -> float:
        return round(100 * min(max(self.probability, 0.0), 1.0), 1)


@dataclass
class Card:
    rank: int
    post_id: int
    author_id: int
    author: str
    text: str
    in_network: bool
    source: str
    served_type: str
    score: float
    weighted_score: float
    diversity: float
    oon_factor: float
    retrieval_score: float
    boost: float                   # what the final score holds beyond the three factors (1 = none)
    bars: list[ActionBar]
    reposted_author: str = ""
    explanation: str = ""
    move: str = ""                 # on the tuning page: "▲3", "▼2", "=", "new"
    topic: str | None = None

    @property
    def network(self) -> str:
        return "in" if self.in_network else "out"


def _boost(post: home_mixer_pb2.ScoredPost) -> float:
    c = post.components
    product = c.weighted_score * c.diversity_multiplier * c.out_of_network_factor
    if not post.predictions or product == 0:
        return 1.0
    ratio = post.score / product
    return 1.0 if abs(ratio - 1.0) < 1e-6 else ratio


def top_bars(post: home_mixer_pb2.ScoredPost, weights: Mapping[str, float], k: int = 5) -> list[ActionBar]:
    ranked = sorted(((n, p) for n, p in post.predictions.items() if n not in CONTINUOUS_OUTPUTS),
                    key=lambda item: (-item[1], item[0]))
    return [ActionBar(n, p, weights.get(n, 0.0), n in NEGATIVE_ACTIONS) for n, p in ranked[:k]]


def cards_from(response: home_mixer_pb2.ScoredPostsResponse, weights: Mapping[str, float] | None = None,
               topic_of=None) -> list[Card]:
    weights = weights or DEFAULT_WEIGHTS
    cards = []
    for rank, post in enumerate(response.scored_posts, 1):
        names = list(post.author_screen_names)
        cards.append(Card(
            rank=rank, post_id=post.post_id, author_id=post.author_id, author=names[0] if names else str(post.author_id),
            text=post.text, in_network=post.in_network, source=post.source, served_type=post.served_type,
            score=post.score, weighted_score=post.components.weighted_score,
            diversity=post.components.diversity_multiplier, oon_factor=post.components.out_of_network_factor,
            retrieval_score=post.components.retrieval_score, boost=_boost(post), bars=top_bars(post, weights),
            reposted_author=names[1] if len(names) > 1 else "",
            topic=topic_of(post.post_id) if topic_of else None,
        ))
    posts = list(response.scored_posts)
    for i, card in enumerate(cards):
        card.explanation = explain(posts[i], posts[i + 1] if i + 1 < len(posts) else None, weights)
    return cards


def _log_ratio(a: float, b: float) -> float:
    if a > 0 and b > 0:
        return math.log(a / b)
    return 0.0 if a == b else (math.inf if a > b else -math.inf)


def explain(a: home_mixer_pb2.ScoredPost, b: home_mixer_pb2.ScoredPost | None,
            weights: Mapping[str, float]) -> str:
    """Why `a` ranks right above `b`: the score factor that separates them most."""
    if b is None:
        return "last post of the feed"
    if not a.predictions:
        return "no model scores (ranked by recency)"
    if a.score == b.score:
        return "same score as the next post: the newer post goes first"
    ca, cb = a.components, b.components
    factors = {
        "weighted": _log_ratio(ca.weighted_score, cb.weighted_score),
        "diversity": _log_ratio(ca.diversity_multiplier, cb.diversity_multiplier),
        "network": _log_ratio(ca.out_of_network_factor, cb.out_of_network_factor),
        "boost": _log_ratio(_boost(a), _boost(b)),
    }
    main = max(factors, key=lambda k: factors[k])
    if factors[main] <= 0:
        return f"score {a.score:.4g} vs {b.score:.4g} below"
    if main == "weighted":
        reason = f"higher weighted score ({ca.weighted_score:.4g} vs {cb.weighted_score:.4g})"
        action = _deciding_action(a, b, weights)
        if action:
            name, pa, pb = action
            weight = weights.get(name, 0.0)
            reason += (f", mostly a {'lower' if weight < 0 else 'higher'} {name} "
                       f"({pa:.3f} vs {pb:.3f}, weight {weight:g})")
    elif main == "diversity":
        reason = (f"its author is less repeated above (diversity ×{ca.diversity_multiplier:.2f} "
                  f"vs ×{cb.diversity_multiplier:.2f})")
    elif main == "network":
        reason = (f"out-of-network factor ×{ca.out_of_network_factor:.2f} vs ×{cb.out_of_network_factor:.2f}"
                  + (" (in-network vs out-of-network)" if a.in_network and not b.in_network else ""))
    else:
        reason = f"boosted ×{_boost(a):.2f} vs ×{_boost(b):.2f}"
    against = [k for k, v in factors.items() if v < -1e-9]
    if against:
        reason += "; despite " + ", ".join({"weighted": "a lower weighted score", "diversity": "a lower diversity",
                                            "network": "a lower out-of-network factor",
                                            "boost": "a smaller boost"}[k] for k in against)
    return f"above the next post: {reason}"


def _deciding_action(a, b, weights: Mapping[str, float]) -> tuple[str, float, float] | None:
    best, best_gain = None, 0.0
    for name, weight in weights.items():
        pa, pb = a.predictions.get(name, 0.0), b.predictions.get(name, 0.0)
        gain = weight * (pa - pb)
        if name not in CONTINUOUS_OUTPUTS and gain > best_gain:
            best, best_gain = (name, pa, pb), gain
    return best


@dataclass
class LeftPost:
    rank: int        # rank in the untuned feed
    post_id: int
    author: str
    text: str
    in_network: bool

    @property
    def network(self) -> str:
        return "in" if self.in_network else "out"


def apply_moves(baseline: list[Card], tuned: list[Card]) -> list[LeftPost]:
    """Mark each tuned card's move against the untuned feed; returns the posts that left."""
    before = {c.post_id: c.rank for c in baseline}
    for card in tuned:
        old = before.get(card.post_id)
        if old is None:
            card.move = "new"
        elif old == card.rank:
            card.move = "="
        else:
            card.move = f"▲{old - card.rank}" if old > card.rank else f"▼{card.rank - old}"
    now = {c.post_id for c in tuned}
    return [LeftPost(c.rank, c.post_id, c.author, c.text, c.in_network) for c in baseline if c.post_id not in now]


# ---------------------------------------------------------------------------- pipeline


@dataclass
class Removed:
    post_id: int
    author: str
    text: str


@dataclass
class TimingBar:
    name: str
    duration_ms: float
    percent: float
    children: list["TimingBar"] = field(default_factory=list)


def group_removed(removed: Sequence[home_mixer_pb2.RemovedPost], posts: Mapping[int, object],
                  handles: Mapping[int, str]) -> dict[str, list[Removed]]:
    """Filter name -> its removed posts, filters in pipeline order (first removal)."""
    groups: dict[str, list[Removed]] = {}
    for r in removed:
        post = posts.get(r.post_id)
        author_id = getattr(post, "author_id", 0)
        text = getattr(post, "text", "") or "(post no longer in Thunder)"
        groups.setdefault(r.removed_by, []).append(
            Removed(r.post_id, handles.get(author_id, str(author_id) if author_id else "?"), text))
    return groups


def timing_bars(timings: Sequence[home_mixer_pb2.StageTiming]) -> tuple[list[TimingBar], float]:
    """Per-stage bars (the stage rows) with their components, widths relative to the slowest
    stage; and the total."""
    total = next((t.duration_ms for t in timings if t.stage == "total" and not t.component), 0.0)
    stages: dict[str, TimingBar] = {}
    components: dict[str, list[tuple[str, float]]] = {}
    for t in timings:
        if t.stage == "total":
            continue
        if t.component:
            components.setdefault(t.stage, []).append((t.component, t.duration_ms))
        else:
            stages[t.stage] = TimingBar(t.stage, t.duration_ms, 0.0)
    for stage in components:
        stages.setdefault(stage, TimingBar(stage, sum(d for _, d in components[stage]), 0.0))
    longest = max([s.duration_ms for s in stages.values()] + [c for cs in components.values() for _, c in cs] + [1e-9])
    for name, bar in stages.items():
        bar.percent = round(100 * bar.duration_ms / longest, 1)
        bar.children = [TimingBar(c, d, round(100 * d / longest, 1)) for c, d in components.get(name, [])]
    return list(stages.values()), total


def component_names(timings: Sequence[home_mixer_pb2.StageTiming]) -> list[str]:
    """The components the server ran (its timings name them), in pipeline order."""
    return list(dict.fromkeys(t.component for t in timings if t.component))
