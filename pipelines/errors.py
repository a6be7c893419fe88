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


class IngestRejected(UserError):
    """A file had too many bad rows (or is of an unknown kind); the good files still landed."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class PipelineError(UserError):
    """A pipeline stage (the dbt build) failed; the message names the failing model or test."""

    def __init__(self, message: str, result: object | None = None) -> None:
        super().__init__(message)
        self.result = result


class ValidationFailed(UserError):
    """A Great Expectations suite failed; the message names the failed expectations."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report
