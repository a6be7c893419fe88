"""Interaction events from a message stream: one small interface, the Redis Streams implementation.

A producer (the marketing platform) appends one event per message, its ``event`` field holding the
JSON object ``POST /feedback`` takes (``event_id``, ``decision_id``, ``event_type``, ``occurred_at``
with a time zone, ``value``?)::

    XADD feedback * event '{"event_id": "ev-1", "decision_id": "rt-2-...", "event_type": "open", ...}'

The consumer (pipelines/stream/consumer.py) lands them through the same idempotent path as
``POST /feedback``, then acknowledges. What it needs from a broker is :class:`EventStream`:

- ``read``: up to ``count`` new messages for this consumer of the group;
- ``pending``: messages delivered to this consumer (by name) and never acknowledged: what a
  restarted consumer of the same name resumes with;
- ``claim_idle``: messages delivered to another consumer and left unacknowledged for at least
  ``min_idle_seconds`` (that consumer died): they are now this consumer's;
- ``ack``: the batch is done: all its ids, dead letters included, called only after the database
  transaction committed;
- ``dead_letter``: a message that can never land (malformed, invalid, unknown decision, conflict)
  is recorded with its reason and acknowledged, in one step.

The consumer acknowledges a whole batch at once, after its commit, which is what Kafka needs.

**Redis Streams** (:class:`RedisEventStream`): ``XGROUP CREATE <stream> <group> 0 MKSTREAM`` (a new
group starts at the beginning of the stream: events appended before it existed land too),
``XREADGROUP ... >`` (new), ``XREADGROUP ... 0`` (own pending), ``XAUTOCLAIM`` (idle pending of
others), ``XACK``. A dead letter goes to the stream ``<stream>:dead`` with the original fields and
``dead_reason``, ``dead_id``, ``dead_group``, ``dead_consumer``; a Lua script acknowledges and
appends it atomically, and appends only when this acknowledgement was the first (a message claimed
from a consumer that was slow rather than dead is dead-lettered once). Redis keeps acknowledged
entries: producers bound the stream (``XADD <stream> MAXLEN ~ N``) or operators trim it.

**Kafka in its place** (not built nor tested here; confluent-kafka): a ``KafkaEventStream`` with a
``Consumer({"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"})``
subscribed to the topic; ``read`` = ``consumer.consume(count, timeout)`` (message id =
``topic/partition/offset``, payload = the message value); ``ack`` = ``consumer.commit(offsets=
[TopicPartition(topic, partition, offset + 1) ...], asynchronous=False)``, the highest offset per
partition of the batch (Kafka's commits are cumulative, and the consumer acknowledges only whole
batches, dead letters included, after they landed, so that is exact); ``pending`` and
``claim_idle`` return nothing, because Kafka re-delivers from the last committed offset to
whichever consumer the group's rebalance gives the partition (a dead consumer is noticed after
``session.timeout.ms``); ``dead_letter`` = produce to ``<topic>.dead`` and ``flush()`` before the
commit (at least once there, not exactly once).
"""

from __future__ import annotations

from pipelines.stream.interface import EventStream, Message
from pipelines.stream.redis_streams import RedisEventStream, dead_letter_stream_name, redis_client

__all__ = ["EventStream", "Message", "RedisEventStream", "dead_letter_stream_name", "redis_client"]
