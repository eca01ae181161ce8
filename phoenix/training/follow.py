"""Continuous training: `foryou train ranker|retriever --follow` (settings: FollowSettings,
phoenix/training/cli.py; `foryou up --train` runs one per model in the stack).

- One Kafka consumer (foryou/kafka.py) follows the four topics in a background thread for the
  whole run: it replays the log once, then hands over new records as they arrive, columns
  only (an EventLogBuilder in an `Inbox`). Rounds never re-read the topics; a log reset under
  the consumer (a broker that lost its log) empties the window and replays, as Thunder does.
- The window (window.py) holds the last `window_hours` of events by event time.
- Every `interval_s` the loop takes what arrived; once `min_new_events` engagement + served
  records arrived since the last round (`Follower.absorb` says which count), a round trains
  `round_steps` steps at most (the normal early stopping on the window's validation slice),
  warm-started from the last parameters and semantic-id codebook, and saves an orbax
  checkpoint where Phoenix polls (phoenix/checkpoints.py: assembled under a temporary name,
  renamed into place, so a reader never sees half of one). Phoenix hot-reloads it.
- A restarted trainer resumes from the newest checkpoint of its model in the directory
  (parameters, codebook, step, and the newest event time it trained on, from metrics.json).
  Only the newest `keep_checkpoints` are kept; temporary directories a killed save left are
  removed at start.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from foryou import topics
from foryou.kafka import ReplayConsumer, security_options
from phoenix import checkpoints
from phoenix.training import window as window_lib
from phoenix.training.cli import FollowSettings
from phoenix.training.event_log import EventLog, EventLogBuilder
from phoenix.training.sources import CheckedRecords

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FollowPlan:
    """When rounds run and what they train on (FollowSettings' values; its defaults)."""
    interval_s: float = FollowSettings.default("interval_s")
    min_new_events: int = FollowSettings.default("min_new_events")
    window_hours: float = FollowSettings.default("window_hours")
    round_steps: int = FollowSettings.default("round_steps")
    keep_checkpoints: int = FollowSettings.default("keep_checkpoints")
    test_fraction: float = FollowSettings.default("follow_test_fraction")

    @property
    def window_ms(self) -> int:
        return int(self.window_hours * 3_600_000)


@dataclass(frozen=True)
class Arrivals:
    """What came in since the last take: the events, the post ids deleted meanwhile, and
    whether the log was reset (everything read before is void)."""
    log: EventLog
    deleted: np.ndarray
    reset: bool


class Inbox:
    """Events the consumer thread adds, taken by the training loop; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._builder = EventLogBuilder()
        self._reset = False
        self.received = 0

    def add(self, topic: str, message) -> None:
        with self._lock:
            self._builder.add(topic, message)
            self.received += 1

    def reset(self) -> None:
        with self._lock:
            self._builder, self._reset = EventLogBuilder(), True

    def take(self) -> Arrivals:
        with self._lock:
            builder, reset = self._builder, self._reset
            self._builder, self._reset = EventLogBuilder(), False
        return Arrivals(builder.build(), np.asarray(builder.deleted, np.uint64), reset)


class TopicReader:
    """The topics followed into an Inbox by one ReplayConsumer in its own thread and event loop."""

    def __init__(self, bootstrap: str, inbox: Inbox, names: tuple[str, ...] = tuple(topics.TOPICS)) -> None:
        self.inbox = inbox
        self.consumer = ReplayConsumer(bootstrap, names, "foryou-train-follow", CheckedRecords(inbox.add),
                                       on_reset=inbox.reset, consumer_options=security_options())
        self.caught_up = threading.Event()
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._thread = threading.Thread(target=self._main, name="follow-reader", daemon=True)

    def start(self) -> "TopicReader":
        self._thread.start()
        return self

    def _main(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._task = self._loop.create_task(self.consumer.run(on_caught_up=self.caught_up.set))
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # the loop sees it and exits: the supervisor restarts us
            self.error = exc
            log.exception("the Kafka reader failed")
        finally:
            self._loop.run_until_complete(self.consumer.stop())
            self._loop.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 10.0) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        self._thread.join(timeout_s)


@dataclass
class Model:
    """What the next round warm-starts from (params None: a fresh model)."""
    config: Any
    params: Any = None
    codebook: Any = None
    step: int = 0
    trained_through_ms: int = -1   # the newest event time of the last round's window
    checkpoint_id: str | None = None
    round: int = 0                 # rounds trained into it, across restarts


def resume(checkpoint_dir: str | Path, kind: str, config) -> Model:
    """The newest checkpoint of `kind` in the directory, else a fresh `config` model. The
    checkpoint's own config wins (its parameters have its shapes)."""
    ref = checkpoints.latest(checkpoint_dir, kind)
    if ref is None:
        return Model(config)
    saved_config, params = checkpoints.load(ref)
    if saved_config != config:
        log.warning("%s: continuing with the config of %s, not the preset's", kind, ref.checkpoint_id)
    done = checkpoints.load_metrics(ref).get("follow", {})  # absent: a checkpoint `foryou train` saved
    return Model(saved_config, params, checkpoints.load_codebook(ref), ref.step, int(done.get("newest_event_ms", -1)),
                 ref.checkpoint_id, int(done.get("round", 0)))


def remove_temporaries(checkpoint_dir: str | Path, kind: str) -> int:
    """Delete the temporary step directories a killed save left behind (one trainer per model
    writes this directory, so none is in progress at start). Returns how many."""
    kind_dir = Path(checkpoint_dir) / kind
    stale = [p for p in kind_dir.glob(".tmp-*") if p.is_dir()] if kind_dir.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return len(stale)


def prune(checkpoint_dir: str | Path, kind: str, keep: int) -> list[int]:
    """Delete all but the newest `keep` step directories of `kind`; returns the deleted steps."""
    kind_dir = Path(checkpoint_dir) / kind
    steps = sorted(int(p.name) for p in kind_dir.iterdir() if p.name.isdigit() and p.is_dir())
    gone = steps[:-keep] if keep > 0 else steps
    for step in gone:
        shutil.rmtree(kind_dir / str(step), ignore_errors=True)
    return gone


class Follower:
    """The window and the model of one trainer; `absorb`, `due` and `train_round` are the
    loop's steps (`run` below), callable one by one in tests."""

    def __init__(self, kind: str, recipe, plan: FollowPlan, checkpoint_dir: str | Path,
                 progress=lambda line: log.info("%s", line)) -> None:
        self.kind, self.recipe, self.plan, self.checkpoint_dir = kind, recipe, plan, checkpoint_dir
        self.progress = progress
        remove_temporaries(checkpoint_dir, kind)
        self.model = resume(checkpoint_dir, kind, recipe.config)
        self.window = window_lib.empty()
        self.new_events = 0
        self._replayed = False

    def absorb(self, arrivals: Arrivals) -> None:
        """Add what arrived to the window. New events (for the trigger) are the engagement and
        served records that arrived, in the window; of a replay (the first take, or one after a
        reset), only those newer than the newest event the model was trained on, so a
        restarted trainer does not count what it already learnt from. A record that arrives
        late, with an old time, counts too."""
        replay = arrivals.reset or not self._replayed
        if arrivals.reset:  # the log was replaced: what the window held may never have been
            self.window, self.new_events = window_lib.empty(), 0
        merged = window_lib.merge(self.window, arrivals.log, arrivals.deleted)
        self.window = window_lib.trim(merged, self.plan.window_ms)
        since = window_lib.newest_ms(self.window) - self.plan.window_ms - 1
        self.new_events += window_lib.count_after(
            arrivals.log, max(since, self.model.trained_through_ms) if replay else since)
        self._replayed = True

    def pending(self) -> int:
        """New engagement + served events since the last round (see absorb)."""
        return self.new_events

    def due(self) -> bool:
        return self.pending() >= self.plan.min_new_events

    def train_round(self) -> checkpoints.CheckpointRef:
        """Train on the window from the current model, save, prune; the saved model is the next
        round's start."""
        started = time.monotonic()
        w, model, plan = self.window, self.model, self.plan
        newest = window_lib.newest_ms(w)
        settings = replace(self.recipe.settings, test_fraction=plan.test_fraction)
        params, metrics = self.recipe.module.train(
            w, model.config, steps=plan.round_steps, settings=settings, progress=self.progress,
            params=model.params, codebook=model.codebook, **self.recipe.extra)
        codebook = metrics.get("codebook", model.codebook)
        step = model.step + max(1, int(metrics["train"]["steps"]))
        metrics["follow"] = {"round": model.round + 1, "newest_event_ms": newest,
                             "window_from_ms": newest - plan.window_ms, "warm_start_from": model.checkpoint_id,
                             "posts": len(w.posts), "engagements": len(w.engagements), "served": len(w.served),
                             "new_events": self.pending()}
        ref = checkpoints.save(self.checkpoint_dir, self.kind, step, params, model.config, metrics, codebook=codebook)
        prune(self.checkpoint_dir, self.kind, plan.keep_checkpoints)
        self.model = Model(model.config, params, codebook, step, newest, ref.checkpoint_id, model.round + 1)
        self.new_events = 0
        print(f"round {self.model.round}: {metrics['train']['steps']} steps on {len(w.engagements)} engagements, "
              f"{len(w.served)} served events, {len(w.posts)} posts; saved {ref.checkpoint_id} "
              f"({_headline(self.kind, metrics)}, {time.monotonic() - started:.0f}s)", flush=True)
        return ref


def _headline(kind: str, metrics: dict) -> str:
    model = metrics.get("eval", {}).get("methods", {}).get("model", {})
    if kind == checkpoints.RANKER:
        return f"held-out favorite AUC {model.get('favorite', {}).get('auc', float('nan')):.3f}"
    return f"held-out recall@100 {model.get('recall@100', float('nan')):.3f}"


def follow(follower: Follower, reader: TopicReader, stop: threading.Event) -> int:
    """The loop: wait for the replay, then every interval take the arrivals and train a round
    when one is due. Returns 1 when the reader failed (the stack restarts the trainer)."""
    while not reader.caught_up.wait(0.5):
        if stop.is_set() or not reader.alive:
            return 0 if stop.is_set() else 1
    print(f"caught up with the topics ({reader.inbox.received} records); following", flush=True)
    while not stop.is_set():
        if not reader.alive:
            return 1
        follower.absorb(reader.inbox.take())
        if follower.due():
            try:
                follower.train_round()
            except Exception:  # e.g. no training examples yet: keep following, try again later
                log.exception("round failed; the next one starts from %s", follower.model.checkpoint_id)
        stop.wait(follower.plan.interval_s)
    return 0


def run(args, recipe) -> int:
    """`foryou train MODEL --follow` (args: resolved TrainSettings + FollowSettings)."""
    if args.events_file:
        raise SystemExit("--follow follows the Kafka topics; it does not read --events-file")
    if args.mesh or args.coordinator:
        raise SystemExit("--follow trains on one device (no --mesh / --coordinator)")
    plan = FollowPlan(args.interval_s, args.min_new_events, args.window_hours, args.round_steps,
                      args.keep_checkpoints, args.follow_test_fraction)
    follower = Follower(args.model, recipe, plan, args.checkpoint_dir)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # finish the round in progress, then stop
        signal.signal(sig, lambda *_: stop.set())
    start = f"from {follower.model.checkpoint_id}" if follower.model.checkpoint_id else "from scratch"
    print(f"following {args.kafka_bootstrap} to train the {args.model} ({start}; a round every {plan.interval_s:g}s "
          f"with >= {plan.min_new_events} new events, window {plan.window_hours:g} h)", flush=True)
    reader = TopicReader(args.kafka_bootstrap, Inbox()).start()
    try:
        return follow(follower, reader, stop)
    finally:
        reader.stop()
