"""The :class:`~pipelines.stream.interface.EventStream` on Redis Streams (consumer groups).

Bytes in, bytes out (``decode_responses=False``): a message that is not UTF-8 reaches the consumer
as bytes and is dead-lettered there, instead of failing inside the client on every read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import redis

from pipelines.errors import ServiceUnavailable
from pipelines.stream.interface import Message

# Acknowledge, and append the dead letter only when this acknowledgement was the first: a message
# claimed from a slow (not dead) consumer is handled twice but dead-lettered once.
_DEAD_LETTER_LUA = """
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if acked == 1 then
  redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
end
return acked
"""


def dead_letter_stream_name(stream: str) -> str:
    return f"{stream}:dead"


def redis_client(url: str, timeout_seconds: float = 30.0) -> redis.Redis:
    """A client for ``url``; reads block at most ``timeout_seconds`` (longer than any XREADGROUP
    BLOCK the consumer asks for) so that a hung server ends in an error, not a hang."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=5, socket_timeout=timeout_seconds, decode_responses=False
    )


@contextlib.contextmanager
def _reachable(client: redis.Redis) -> Iterator[None]:
    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        kwargs = client.connection_pool.connection_kwargs
        where = f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceUnavailable(f"cannot reach Redis at {where}: {reason}") from None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisEventStream:
    """One consumer of one group on one Redis stream; creates the group (and stream) when missing."""

    def __init__(self, client: redis.Redis, stream: str, group: str, consumer: str) -> None:
        self.client, self.name, self.group, self.consumer = client, stream, group, consumer
        self.dead_name = dead_letter_stream_name(stream)
        self._claim_cursor = "0-0"
        self._dead_letter = client.register_script(_DEAD_LETTER_LUA)
        with _reachable(client):
            try:
                client.xgroup_create(stream, group, id="0", mkstream=True)
            except redis.exceptions.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):  # the group exists: keep its position
                    raise

    def read(self, count: int, block_seconds: float) -> list[Message]:
        block = int(block_seconds * 1000) if block_seconds > 0 else None
        with _reachable(self.client):
            reply = self.client.xreadgroup(
                self.group, self.consumer, {self.name: ">"}, count=count, block=block
            )
        return self._messages(reply)

    def pending(self, count: int) -> list[Message]:
        # Id 0: this consumer's own delivered, unacknowledged entries (from the oldest).
        with _reachable(self.client):
            reply = self.client.xreadgroup(self.group, self.consumer, {self.name: "0"}, count=count)
        return self._messages(reply)

    def claim_idle(self, min_idle_seconds: float, count: int) -> list[Message]:
        """XAUTOCLAIM from where the previous call stopped, so idle entries behind many busy ones
        are reached too; entries trimmed from the stream while pending are dropped by Redis."""
        with _reachable(self.client):
            reply = self.client.xautoclaim(
                self.name,
                self.group,
                self.consumer,
                min_idle_time=int(min_idle_seconds * 1000),
                start_id=self._claim_cursor,
                count=count,
            )
        self._claim_cursor = _text(reply[0])
        return [Message(_text(i), dict(f)) for i, f in reply[1] if f is not None]

    def ack(self, ids: list[str]) -> None:
        if ids:
            with _reachable(self.client):
                self.client.xack(self.name, self.group, *ids)

    def dead_letter(self, message: Message, reason: str) -> None:
        fields: list[Any] = []
        for key, value in message.fields.items():
            fields += [key, value]
        fields += [
            "dead_reason", reason, "dead_id", message.id, "dead_group", self.group,
            "dead_consumer", self.consumer,
        ]  # fmt: skip
        with _reachable(self.client):
            self._dead_letter(keys=[self.name, self.dead_name], args=[self.group, message.id, *fields])

    def _messages(self, reply: Any) -> list[Message]:
        messages, gone = [], []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                if fields:
                    messages.append(Message(_text(entry_id), dict(fields)))
                else:  # pending, but trimmed from the stream meanwhile: nothing left to land
                    gone.append(_text(entry_id))
        self.ack(gone)
        return messages
