"""Airflow's ``[core] hostname_callable`` for several Celery workers on one machine.

A task instance records the hostname of the worker that ran it; two workers on one host would
both record the host's name. Each worker of `airflow_cluster` gets ``CAMPAIGNOPT_WORKER_NAME``
in its environment, and its tasks record that name instead (the task process inherits it).
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """The worker's own name when it has one (``w1``), else the machine's fully qualified name."""
    return os.environ.get("CAMPAIGNOPT_WORKER_NAME") or socket.getfqdn()
