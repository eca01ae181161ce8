"""The training loop's parameter averaging (TrainSettings.ema_decay)."""
from dataclasses import replace

import jax.numpy as jnp
import numpy as np
import optax

from phoenix.training.loop import TrainSettings, _Average, fit, optimizer


def test_average_is_the_bias_corrected_moving_average_of_the_steps():
    average = _Average({"w": jnp.zeros(2)}, 0.9)
    assert float(average.value({"w": jnp.full(2, 7.0)})["w"][0]) == 7.0  # before any step: the parameters
    expected_total, seen = np.zeros(2), []
    for k in range(1, 6):
        step = np.asarray([k, -2.0 * k])
        seen.append(step)
        average.update({"w": jnp.asarray(step)})
        expected_total = 0.9 * expected_total + 0.1 * step
        np.testing.assert_allclose(np.asarray(average.value(None)["w"]), expected_total / (1 - 0.9 ** k), rtol=1e-5)
    first = _Average({"w": jnp.zeros(2)}, 0.9)
    first.update({"w": jnp.asarray(seen[0])})
    np.testing.assert_allclose(np.asarray(first.value(None)["w"]), seen[0], rtol=1e-6)


def test_no_decay_returns_the_raw_parameters():
    average = _Average({"w": jnp.zeros(1)}, 0.0)
    average.update({"w": jnp.ones(1)})
    assert float(average.value({"w": jnp.full(1, 5.0)})["w"][0]) == 5.0


def test_fit_returns_the_average_of_its_steps():
    """A linear loss (constant gradient): fit's result is the moving average of the steps the
    same optimiser takes, and without averaging the last step."""
    settings = TrainSettings(steps=40, batch_size=2, learning_rate=0.1, weight_decay=0.0, warmup_steps=5,
                             log_every=1000, validation_fraction=0.0)
    data = {"x": np.ones((4, 1), np.float32)}

    def loss_fn(p, b):
        loss = -jnp.mean(p["w"] * b["x"][:, 0])
        return loss, {"loss": loss}
    opt = optimizer(settings)
    w, state, trajectory = {"w": jnp.zeros(())}, None, []
    state = opt.init(w)
    for _ in range(settings.steps):
        updates, state = opt.update({"w": jnp.asarray(-1.0)}, state, w)
        w = optax.apply_updates(w, updates)
        trajectory.append(float(w["w"]))
    total = 0.0
    for value in trajectory:
        total = 0.8 * total + 0.2 * value
    raw, _ = fit(loss_fn, {"w": jnp.zeros(())}, data, 4, settings, "toy", lambda _: None)
    averaged, _ = fit(loss_fn, {"w": jnp.zeros(())}, data, 4, replace(settings, ema_decay=0.8), "toy", lambda _: None)
    np.testing.assert_allclose(float(raw["w"]), trajectory[-1], rtol=1e-5)
    np.testing.assert_allclose(float(averaged["w"]), total / (1 - 0.8 ** settings.steps), rtol=1e-5)
    assert float(averaged["w"]) < trajectory[-1] - 0.02  # the average lags the still-rising parameter


def test_v2_ranker_recipe_averages_and_v1_keeps_the_plain_fixed_step_one():
    from phoenix.training import ranker
    from phoenix.training.presets import DEFAULT_STEPS, RANKER_STEPS, train_recipe

    v2, v1 = train_recipe("small"), train_recipe("small-v1")
    assert (v2.steps("ranker"), v1.steps("ranker")) == (RANKER_STEPS, DEFAULT_STEPS)
    v2_settings = ranker.default_settings(10, v2.ranker)
    assert (v2_settings.ema_decay, v2_settings.dropout) == (ranker.EMA_DECAY, ranker.DROPOUT)
    assert v2_settings.ema_decay > 0 and v2_settings.dropout > 0
    assert ranker.default_settings(10, v1.ranker) == TrainSettings(steps=10)


def test_retriever_averages_the_sequential_recipe_only_and_each_switch_reaches_its_recipe(monkeypatch):
    from phoenix.training import retriever
    from phoenix.training.presets import train_recipe

    v2, sequential, v1 = (train_recipe(p).retriever for p in ("small", "movielens", "small-v1"))
    assert retriever.default_settings(10, sequential).ema_decay == retriever.SEQUENCE_EMA_DECAY > 0
    assert retriever.default_settings(10, v2).ema_decay == retriever.EMA_DECAY == 0.0
    monkeypatch.setattr(retriever, "EMA_DECAY", 0.9)
    monkeypatch.setattr(retriever, "SEQUENCE_EMA_DECAY", 0.8)
    assert retriever.default_settings(10, v2).ema_decay == 0.9
    assert retriever.default_settings(10, sequential).ema_decay == 0.8
    assert retriever.default_settings(10, v1).ema_decay == 0.0  # v1 keeps its fixed-step recipe
