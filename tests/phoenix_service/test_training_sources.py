"""Training reads its events from Kafka (phoenix/training/sources.py): records become the
columnar EventLog as they arrive, and a bad record is skipped and counted, not trained on.

The session broker is shared with other suites: the test asserts only about its own ids."""
from __future__ import annotations

import numpy as np

from foryou import event_rules, snowflake, topics
from foryou_protos import common_pb2
from phoenix.training.sources import read_topics
from tests.phoenix_service.conftest import AUTHOR_BASE, created, deleted, new_post_id, publish

USER = 9_180_001


def _refused() -> float:
    """Engagement records the training reader refused so far, whatever the reason."""
    return sum(sample.value for metric in event_rules.REFUSED.collect() for sample in metric.samples
               if sample.name.endswith("_total") and sample.labels["service"] == "training"
               and sample.labels["topic"] == topics.ENGAGEMENTS)


async def test_read_topics_builds_the_event_log_and_skips_bad_records(kafka, producer):
    author = AUTHOR_BASE + 77
    kept, gone = new_post_id(age_ms=5_000), new_post_id(age_ms=4_000)
    await publish(producer, [created(kept, author), created(gone, author), deleted(gone, author)])
    engagement = common_pb2.Engagement(user_id=USER, post_id=kept, post_author_id=author,
                                       actions=[common_pb2.FAVORITE, common_pb2.REPLY],
                                       timestamp_ms=snowflake.created_at_ms(kept) + 1_000, dwell_time_ms=1_500)
    await producer.send(topics.ENGAGEMENTS, topics.encode(engagement),
                        key=topics.key_for(topics.ENGAGEMENTS, engagement))
    await producer.send(topics.ENGAGEMENTS, b"\xff\x00 not an engagement", key=topics.encode_key(USER))
    await producer.flush()
    refused_before = _refused()

    log = await read_topics(kafka, timeout_s=60)

    row, known = log.posts.find([kept, gone])
    assert known.all()
    assert log.posts.authors[row].tolist() == [author, author]
    assert log.posts.deleted[row].tolist() == [False, True]
    mine = np.flatnonzero(log.engagements.user == USER)
    assert len(mine) == 1  # the bad record is not an engagement
    assert int(log.engagements.post[mine[0]]) == kept
    assert int(log.engagements.dwell[mine[0]]) == 1_500
    assert _refused() == refused_before + 1
