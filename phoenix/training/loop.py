"""The optimisation loop shared by the ranker and the retriever: AdamW with warm-up and cosine
decay, gradient clipping, random minibatches drawn from in-memory example arrays, and
progress lines (step, loss, examples/s)."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from phoenix.training import distributed, mesh as mesh_lib


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 400
    batch_size: int = 256
    learning_rate: float = 1e-2
    # Strong decoupled weight decay: the worlds are small (hundreds of users, a few thousand
    # posts) and the model overfits user/author pairs without it. Measured on a 500-user world,
    # tiny model, 400 steps of 256: held-out favorite AUC 0.67 (1e-4), 0.78 (0.05), 0.81 (0.5).
    weight_decay: float = 0.5
    # Input dropout of the ranker's transformer (phoenix/ranker.py), training steps only; a loss
    # function that takes it gets a third argument, a per-step PRNG key. 0 = off, the loop's
    # default; the v2 ranker's recipe sets it (training/ranker.py).
    dropout: float = 0.0
    warmup_steps: int = 20
    clip_norm: float = 1.0
    test_fraction: float = 0.2
    seed: int = 0
    log_every: int = 50
    # Early stopping: the last `validation_fraction` of the training window (by time; never the
    # held-out split) is set aside; every `eval_every` steps its loss is measured, the best
    # parameters are kept, and training stops after `patience` checks without improvement.
    # `steps` is then the maximum. validation_fraction 0 trains exactly `steps` steps.
    validation_fraction: float = 0.1
    eval_every: int = 25
    patience: int = 4
    # Weight averaging: validation, early stopping and the returned parameters use an exponential
    # moving average of the parameters (bias-corrected, so it starts at the first steps' mean)
    # with this decay per step; 0 = the raw parameters. docs/phoenix.md has the comparison.
    ema_decay: float = 0.0


def print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def optimizer(settings: TrainSettings) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, settings.learning_rate, max(1, min(settings.warmup_steps, settings.steps // 2)),
        max(settings.steps, 2), end_value=settings.learning_rate * 0.05)
    return optax.chain(optax.clip_by_global_norm(settings.clip_norm),
                       optax.adamw(schedule, weight_decay=settings.weight_decay, mask=_decayed))


# Parameters weight decay leaves alone: an output bias set to the data's log-odds would otherwise
# be pulled back to p = 0.5.
NOT_DECAYED = ("action_bias",)


def _decayed(params: Any) -> Any:
    def decay(path, _leaf) -> bool:
        names = [getattr(k, "key", getattr(k, "name", "")) for k in path]
        return not any(n in NOT_DECAYED for n in names)
    return jax.tree_util.tree_map_with_path(decay, params)


def fit(loss_fn: Callable[[Any, Any], tuple[jax.Array, dict]], params: Any, data: Any, num_examples: int,
        settings: TrainSettings, name: str, progress: Callable[[str], None] = print_progress,
        validation: Any = None, num_validation: int = 0) -> tuple[Any, dict]:
    """Minimise `loss_fn(params, minibatch)`; `data` is a pytree of arrays with `num_examples`
    rows, minibatches are random rows of it. With `validation` (a pytree of `num_validation`
    rows) training stops early on its loss and returns the best parameters seen.
    With `settings.ema_decay` the parameters validated and returned are the moving average.
    Returns (params, training summary)."""
    if num_examples == 0:
        raise ValueError(f"{name}: no training examples (are the engagements/served topics empty?)")
    opt = optimizer(settings)
    params = mesh_lib.place_params(params)  # identity unless training on a mesh (mesh.py)
    # One compile, not one per leaf; the optimiser state is sharded like the parameters it
    # mirrors, in and out of the step, so the step compiles once (mesh.constrain).
    opt_state = jax.jit(lambda p: mesh_lib.constrain(opt.init(p)))(params)
    step = _train_step(loss_fn, opt, settings.dropout > 0)
    dropout_key, rng = jax.random.PRNGKey(settings.seed + 1), np.random.default_rng(settings.seed)
    batch_size = min(mesh_lib.local_rows(settings.batch_size), num_examples)  # this process's rows
    start = window_start = time.perf_counter()
    first_loss = last_loss = float("nan")
    val_loss = jax.jit(lambda p, b: loss_fn(p, b)[0])
    val_rows = _validation_rows(batch_size, num_validation)

    def validate(p) -> float:
        chunks = (mesh_lib.place_batch(jax.tree.map(lambda a: a[r], validation)) for r in val_rows)
        return float(np.mean([float(val_loss(p, chunk)) for chunk in chunks]))

    early = validation is not None and num_validation > 0
    best, stopped = _Best(params), settings.steps
    average = _Average(params, settings.ema_decay)
    for i in range(1, settings.steps + 1):
        rows = rng.choice(num_examples, size=batch_size, replace=False)
        batch = mesh_lib.place_batch(jax.tree.map(lambda a: a[rows], data))
        params, opt_state, metrics = step(params, opt_state, batch, jax.random.fold_in(dropout_key, i))
        average.update(params)
        if i == 1 or i % settings.log_every == 0 or i == settings.steps:
            loss = float(metrics["loss"])
            first_loss = loss if i == 1 else first_loss
            last_loss = loss
            now = time.perf_counter()
            progress(_progress_line(name, i, settings, metrics, batch_size, now - window_start))
            window_start = now
        if early and (i % settings.eval_every == 0 or i == settings.steps):
            v = validate(current := average.value(params))
            best.record(i, v, current)
            if best.since >= settings.patience:
                progress(f"[{name}] early stop at step {i}: validation loss {v:.4f}, best {best.loss:.4f} "
                         f"at step {best.step}")
                stopped = i
                break
    elapsed = time.perf_counter() - start
    summary: dict[str, Any] = {"steps": stopped, "max_steps": settings.steps, "batch_size": batch_size,
                               "train_examples": num_examples, "first_loss": first_loss, "final_loss": last_loss,
                               "seconds": elapsed, "examples_per_s": stopped * batch_size / max(elapsed, 1e-9)}
    params = average.value(params)
    if early:
        params = best.params
        summary.update(validation_examples=num_validation, best_step=best.step, best_validation_loss=best.loss,
                       validation_curve=best.curve)
    return mesh_lib.local_params(params), summary


def _train_step(loss_fn: Callable[..., tuple[jax.Array, dict]], opt: optax.GradientTransformation,
                with_key: bool = False) -> Any:
    """One jitted optimiser step: (params, opt_state, batch, key) -> (params, opt_state, metrics);
    `with_key`: the loss takes the step's key (dropout), else it is not used."""
    @jax.jit
    def step(params, opt_state, batch, key):
        loss = (lambda p, b: loss_fn(p, b, key)) if with_key else loss_fn
        (loss, metrics), grads = jax.value_and_grad(loss, has_aux=True)(params, batch)
        updates, opt_state = opt.update(grads, opt_state, params)
        return mesh_lib.constrain(optax.apply_updates(params, updates)), mesh_lib.constrain(opt_state), metrics
    return step


def _validation_rows(batch_size: int, num_validation: int) -> list[np.ndarray]:
    """The validation set's rows in minibatches of `batch_size`."""
    rows = [np.arange(lo, min(lo + batch_size, num_validation)) for lo in range(0, num_validation, batch_size)]
    rows = [r for r in rows if len(r) == batch_size] or rows[:1]  # one shape: one compile
    return rows[:distributed.agreed_min(len(rows))]  # processes run the same steps


def _progress_line(name: str, i: int, settings: TrainSettings, metrics: dict, batch_size: int,
                   seconds: float) -> str:
    """Step `i`'s line; the rate is over the steps since the previous line (`seconds` ago)."""
    every = settings.log_every
    steps_in_window = 1 if i == 1 else every if i % every == 0 else i % every
    rate = steps_in_window * batch_size / max(seconds, 1e-9)
    extra = " ".join(f"{k} {float(v):.4f}" for k, v in metrics.items() if k != "loss")
    return f"[{name}] step {i}/{settings.steps} loss {float(metrics['loss']):.4f} {extra} examples/s {rate:,.0f}"


class _Average:
    """The bias-corrected exponential moving average of the parameters (`decay` 0: none)."""

    def __init__(self, params: Any, decay: float):
        self.decay, self.steps = decay, 0
        self.total = jax.tree.map(jnp.zeros_like, params) if decay > 0 else None
        self._update = jax.jit(lambda t, p: jax.tree.map(lambda a, b: decay * a + (1 - decay) * b, t, p))
        self._value = jax.jit(lambda t, n: jax.tree.map(lambda a: a / (1 - decay ** n), t))

    def update(self, params: Any) -> None:
        if self.total is not None:
            self.total, self.steps = self._update(self.total, params), self.steps + 1

    def value(self, params: Any) -> Any:
        """The average so far (the parameters themselves without averaging or before a step)."""
        if self.total is None or self.steps == 0:
            return params
        return self._value(self.total, jnp.float32(self.steps))


@dataclass
class _Best:
    """Early stopping's record: the best validation loss so far, its parameters and step, the
    checks since it, and every check's (step, loss)."""
    params: Any
    loss: float = float("inf")
    step: int = 0
    since: int = 0
    curve: list[tuple[int, float]] = field(default_factory=list)

    def record(self, step: int, loss: float, params: Any) -> None:
        self.curve.append((step, loss))
        if loss < self.loss:
            self.loss, self.params, self.step, self.since = loss, params, step, 0
        else:
            self.since += 1


def validation_split(train, fraction: float) -> tuple[Any, Any]:
    """(fit, validation): the last `fraction` of an example table (phoenix/training/data.py),
    by time, is the validation slice (empty when fraction is 0 or the table is too short to
    spare it)."""
    n = int(len(train) * fraction)
    if fraction <= 0 or n < 1 or len(train) - n < 1:
        return train, train.take(np.zeros(0, np.int64))
    ordered = np.argsort(train.time, kind="stable")
    return train.take(ordered[:-n]), train.take(ordered[-n:])


def fresh_params(params: Any) -> Any:
    """Initial parameters for training from scratch, with the post-hash tables at zero.

    Nearly every post a model meets in serving is newer than its training data, so its
    post-hash rows were never trained: with the default N(0, 1) init they would add noise as
    large as any learned signal (measured: held-out favorite AUC 0.67 -> see README). Zero rows
    contribute nothing until a post's engagements train them; gradients still reach them."""
    def reset(path, leaf):
        names = [getattr(k, "key", getattr(k, "name", "")) for k in path]
        return jnp.zeros_like(leaf) if "post_tables" in names else leaf
    return jax.tree_util.tree_map_with_path(reset, params)
