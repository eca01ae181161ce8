"""`foryou up --train`: the stack runs `foryou train ranker|retriever --follow` beside its
services; events published after start lead to new checkpoints, which Phoenix hot-reloads
(ModelInfo's checkpoint id) without failing a request meanwhile."""
from __future__ import annotations

import argparse
import asyncio
import time

import grpc
import pytest

from foryou.seed import publish_events
from foryou.stack import Stack, StackConfig, add_stack_arguments, stack_config_from_args
from foryou.world import WorldConfig, generate_world
from foryou_protos import phoenix_pb2, phoenix_pb2_grpc
from phoenix import checkpoints

pytestmark = pytest.mark.slow  # starts a stack and trains: scheduled first (tests/conftest.py)

# Rounds as small as a test affords: a check every second, a round once 200 events arrived.
TRAIN_ENV = {"FORYOU_TRAIN_INTERVAL_S": "1", "FORYOU_TRAIN_MIN_NEW_EVENTS": "200",
             "FORYOU_TRAIN_ROUND_STEPS": "8", "FORYOU_TRAIN_BATCH_SIZE": "32"}


def test_up_has_a_train_switch():
    parser = argparse.ArgumentParser()
    add_stack_arguments(parser)
    assert stack_config_from_args(parser.parse_args(["--train"])).train
    assert not stack_config_from_args(parser.parse_args([])).train


async def _rank_until(stub, stop: asyncio.Event, seen: list[str], failures: list[str]) -> None:
    """Rank requests back to back until `stop`: every one must succeed, whatever is reloading."""
    while not stop.is_set():
        try:
            reply = await stub.Rank(phoenix_pb2.RankRequest(user_id=5, post_ids=[11, 12], author_ids=[1, 2]),
                                    timeout=10)
            seen.append(reply.checkpoint_id)
        except grpc.aio.AioRpcError as exc:
            failures.append(f"{exc.code()}: {exc.details()}")
        await asyncio.sleep(0.05)


async def test_published_events_become_a_checkpoint_phoenix_reloads(tmp_path, monkeypatch):
    monkeypatch.setenv("FORYOU_STATE_DIR", str(tmp_path / "state"))
    ckpt = tmp_path / "checkpoints"
    cfg = StackConfig.free_ports(preset="tiny", train=True, checkpoint_dir=str(ckpt), storage="memory",
                                 log_dir=str(tmp_path / "logs"), extra_env=TRAIN_ENV)
    stack = await Stack(cfg, write_state=False).start()
    stop, seen, failures = asyncio.Event(), [], []
    try:
        assert set(stack.trainers) == {"train-ranker", "train-retriever"}
        async with grpc.aio.insecure_channel(stack.address("phoenix")) as channel:
            stub = phoenix_pb2_grpc.PhoenixServiceStub(channel)
            before = (await stub.ModelInfo(phoenix_pb2.ModelInfoRequest(), timeout=10)).checkpoint_id
            assert before == "ranker-init-tiny+retriever-init-tiny"
            ranking = asyncio.create_task(_rank_until(stub, stop, seen, failures))
            world = generate_world(WorldConfig(num_users=50, days=1.0, impressions_per_user=40, seed=8))
            await publish_events(stack.kafka_bootstrap, world.events(), world.num_events())
            deadline = time.monotonic() + 240
            reloaded = before
            while "init" in reloaded:  # both models trained and swapped in
                assert time.monotonic() < deadline, f"Phoenix still serves {reloaded}\n{stack.log_tails()}"
                assert all(t.alive for t in stack.trainers.values()), stack.log_tails()
                await asyncio.sleep(1.0)
                reloaded = (await stub.ModelInfo(phoenix_pb2.ModelInfoRequest(), timeout=10)).checkpoint_id
            await asyncio.sleep(0.5)  # a few requests on the new models
            stop.set()
            await ranking
    finally:
        stop.set()
        stack.stop()
    ranker, retriever = checkpoints.latest(ckpt, "ranker"), checkpoints.latest(ckpt, "retriever")
    assert ranker is not None and retriever is not None
    served_ranker, served_retriever = reloaded.split("+")  # e.g. ranker-8+retriever-16: trained steps
    assert served_ranker.startswith("ranker-") and 0 < int(served_ranker.split("-")[1]) <= ranker.step
    assert served_retriever.startswith("retriever-") and 0 < int(served_retriever.split("-")[1]) <= retriever.step
    assert checkpoints.load_metrics(ranker)["follow"]["engagements"] > 0
    assert not failures, failures[:5]
    assert seen[0] == before and "init" not in seen[-1]
