"""What the service loads once, in ``lifespan``, and keeps for every request (``app.state.service``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pipelines.settings import Settings


@dataclass(frozen=True)
class Component:
    """Something the service loads at start-up and closes at shutdown (the decision engine: the
    stats snapshot and the champion model). ``load`` gets the :class:`ServiceState` and returns the
    component, stored as ``state.components[name]``; if it raises, the service still starts and
    ``/readyz`` reports the component as not loaded."""

    name: str
    load: Callable[[ServiceState], Any]
    close: Callable[[Any], None] | None = None


@dataclass
class ServiceState:
    settings: Settings
    engine: sa.Engine
    head_revision: str
    registry_uri: str  # MLflow tracking/registry, resolved once
    started_at: datetime
    components: dict[str, Any] = field(default_factory=dict)
    load_problems: dict[str, str] = field(default_factory=dict)  # component name -> why it failed
