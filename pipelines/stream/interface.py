"""The interface between the consumer loop and a broker (the package docstring says how each
broker fills it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    """One stream entry: its id in the stream and its fields as the producer wrote them (bytes)."""

    id: str
    fields: dict[bytes, bytes]


class EventStream(Protocol):
    """What the consumer loop needs from a broker, for one consumer of one group on one stream."""

    name: str

    def read(self, count: int, block_seconds: float) -> list[Message]:
        """Up to ``count`` messages never delivered to the group, waiting up to ``block_seconds``."""
        ...

    def pending(self, count: int) -> list[Message]:
        """Up to ``count`` messages delivered to this consumer (by name) and not acknowledged."""
        ...

    def claim_idle(self, min_idle_seconds: float, count: int) -> list[Message]:
        """Up to ``count`` messages of other consumers unacknowledged this long; now this one's."""
        ...

    def ack(self, ids: list[str]) -> None:
        """The messages are done: called once per batch, with all its ids (dead letters included),
        only after its events' transaction committed."""
        ...

    def dead_letter(self, message: Message, reason: str) -> None:
        """Record a message that can never land, with the reason, and acknowledge it."""
        ...
