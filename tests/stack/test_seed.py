"""`foryou seed` publishes a world through the real broker exactly as producers would."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from foryou import topics
from foryou.broker import EmbeddedBroker, create_topics
from foryou.seed import load_world, publish_world
from foryou.world import WorldConfig, generate_world

NOW_MS = 1_800_000_000_000


@pytest.fixture(scope="module")
async def own_kafka():
    """A broker of our own: the counts below must not see other tests' records."""
    with EmbeddedBroker() as broker:
        await create_topics(broker.bootstrap_servers)
        yield broker.bootstrap_servers


async def consume_all(bootstrap: str) -> dict[str, list]:
    """Every record on the four topics, per topic, as (partition, offset, key, value)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t, spec in topics.TOPICS.items() for p in range(spec.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        records: dict[str, list] = defaultdict(list)
        remaining = {tp for tp in parts if end[tp] > 0}
        while remaining:
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, msgs in batch.items():
                records[tp.topic].extend((tp.partition, m.offset, m.key, m.value) for m in msgs)
                if msgs and msgs[-1].offset + 1 >= end[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()


async def test_publish_world_sends_every_event_with_its_key_in_order(own_kafka):
    world = generate_world(WorldConfig(num_users=40, days=0.5, impressions_per_user=20, seed=3, now_ms=NOW_MS))
    progress = []
    counts = await publish_world(world, own_kafka, lambda done, total: progress.append((done, total)))
    assert sum(counts.values()) == world.num_events()
    assert progress[-1] == (world.num_events(), world.num_events())

    records = await consume_all(own_kafka)
    expected = defaultdict(list)
    for topic, message in world.events():
        expected[topic].append((topics.key_for(topic, message), topics.encode(message)))
    for topic in topics.TOPICS:
        got = records[topic]
        assert len(got) == counts[topic] == len(expected[topic])
        # per key, the records keep the world's order (one key -> one partition)
        by_key = defaultdict(list)
        for partition, offset, key, value in sorted(got, key=lambda r: (r[0], r[1])):
            by_key[key].append((partition, value))
        want = defaultdict(list)
        for key, value in expected[topic]:
            want[key].append(value)
        assert set(by_key) == set(want)
        for key, values in want.items():
            assert [v for _, v in by_key[key]] == values
            assert len({p for p, _ in by_key[key]}) == 1


def test_seed_command_saves_a_regenerable_world_and_exports(tmp_path, monkeypatch):
    monkeypatch.setenv("FORYOU_STATE_DIR", str(tmp_path / "state"))
    export = tmp_path / "world.events"
    result = subprocess.run(
        [sys.executable, "-m", "foryou.cli", "seed", "--users", "30", "--days", "0.5", "--impressions-per-user", "10",
         "--seed", "5", "--now-ms", str(NOW_MS), "--no-publish", "--export", str(export)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    saved = json.loads((tmp_path / "state" / "world.json").read_text())
    assert saved["seed"] == 5 and saved["now_ms"] == NOW_MS and saved["num_users"] == 30
    world = load_world()
    assert world.now_ms == NOW_MS and len(world.users) == 30
    from foryou.event_file import read_events
    exported = list(read_events(export))
    assert [(t, topics.encode(m)) for t, m in exported] == [(t, topics.encode(m)) for t, m in world.events()]


def test_seed_command_fails_plainly_without_a_broker(tmp_path, monkeypatch):
    from foryou.broker import free_port
    monkeypatch.setenv("FORYOU_STATE_DIR", str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "foryou.cli", "seed", "--users", "5", "--days", "0.2", "--quiet",
         "--kafka-bootstrap", f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "could not publish" in result.stderr
