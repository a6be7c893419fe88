"""Errors a user can cause: each carries one message naming what is wrong."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from a person: a file, a field, an id. Exit code 2."""

    exit_code = 2


class ServiceUnavailable(UserError):
    """A service (the database, MLflow) cannot be reached. Exit code 3."""

    exit_code = 3


class NotFound(UserError):
    """An unknown campaign, list or model version. Exit code 4."""

    exit_code = 4
