"""Read a YAML file into a pydantic model; every problem is one line naming the file and field.

Stricter than ``yaml.safe_load`` where it silently guesses: the file must be UTF-8, a key
repeated in one mapping (at any depth) is an error instead of "the last one wins", and
date-like scalars stay strings so that pydantic, not the YAML constructor, judges them
(``2026-13-01`` becomes "start_date: ... month ..." instead of a traceback).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from pipelines.errors import UserError

Model = TypeVar("Model", bound=BaseModel)

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_KEY = "<<"


class _Loader(yaml.SafeLoader):
    """SafeLoader without the implicit timestamp type (pydantic parses dates itself)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml_model(path: str | Path, model: type[Model], what: str) -> Model:
    """Parse ``path`` and validate it as ``model``; raise UserError on any problem.

    ``what`` names the kind of file in messages ("campaign", "scenario").
    """
    path = Path(path)
    data = load_yaml_mapping(path, what)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{path}: {describe_validation_error(exc)}") from None


def load_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """The file's top-level mapping; UserError for unreadable, non-UTF-8, malformed or duplicate keys."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the {what} file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UserError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}, column {column}); "
            "save the file as UTF-8"
        ) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _refuse_duplicate_keys(node, (), set())
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: {_describe_yaml_error(exc)}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of {what} fields, got {type(data).__name__}")
    return data


class DuplicateKey(yaml.MarkedYAMLError):
    """The same key twice in one mapping: YAML says keys are unique, PyYAML keeps the last."""


def _refuse_duplicate_keys(node: yaml.Node, where: tuple[str, ...], seen: set[int]) -> None:
    if id(node) in seen:  # an alias: checked where its anchor is (and no endless recursion)
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else None
            if name is not None and name != _MERGE_KEY:
                if name in first_line:
                    mark = key.start_mark
                    raise DuplicateKey(
                        problem=f"duplicate key {'.'.join((*where, name))} at line {mark.line + 1}, "
                        f"column {mark.column + 1} (first at line {first_line[name]})"
                    )
                first_line[name] = key.start_mark.line + 1
            _refuse_duplicate_keys(value, (*where, name if name is not None else "?"), seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicate_keys(item, (*where, str(i)), seen)


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if isinstance(exc, DuplicateKey):
        return problem
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"malformed YAML{where}: {problem}"


def describe_validation_error(exc: ValidationError) -> str:
    """The first error as 'field: problem' (pydantic lists every error; one line is kinder)."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "top level"
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{field}: {msg}{more}"
