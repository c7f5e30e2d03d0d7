"""Views as plain data (JSON's types) and back, for what the application keeps: the answer for
an Idempotency-Key and an event's order.

One generic pair, driven by each view's own annotations, so a field added to a view is kept and
read back without touching this file. Decimals travel as strings (exact), datetimes as ISO 8601
(UTC as "Z"), enums as their values. This is the application's storage form, not a wire format:
the entrypoints still write every answer through their schemas.

Each view type's converters are built once from its annotations (a feed page reads 50 orders;
walking the type hints for each value cost more than the rest of the read).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

V = TypeVar("V")
Convert = Callable[[Any], Any]


def _datetime_text(value: datetime) -> str:
    # UTC as the API writes it ("Z"): what a release before 1.2 kept for an Idempotency-Key was
    # the wire format, and it reads back the same way.
    return value.isoformat().replace("+00:00", "Z")


def _field_names(hint: Any) -> tuple[str, ...] | None:
    """The fields of a view (a NamedTuple) or of a value object (a dataclass), else None."""
    if isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields"):
        return tuple(hint._fields)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return tuple(f.name for f in dataclasses.fields(hint))
    return None


def _optional(convert: Convert) -> Convert:
    return lambda value: None if value is None else convert(value)


def _many(convert: Convert) -> Convert:
    return lambda values: [convert(value) for value in values]


def _inner(hint: Any) -> tuple[Any, bool]:
    """The type inside ``X | None``, and whether None was allowed."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return inner, True
    return hint, False


@functools.cache
def _writer(hint: Any) -> Convert:
    inner, optional = _inner(hint)
    if typing.get_origin(inner) is tuple:
        convert = _many(_writer(typing.get_args(inner)[0]))
    elif (names := _field_names(inner)) is not None:
        hints = typing.get_type_hints(inner)
        fields = [(name, _writer(hints[name])) for name in names]
        convert = lambda view: {  # noqa: E731
            name: write(getattr(view, name)) for name, write in fields
        }
    elif inner is Decimal:
        convert = str
    elif inner is datetime:
        convert = _datetime_text
    elif isinstance(inner, type) and issubclass(inner, enum.Enum):
        convert = lambda member: member.value  # noqa: E731
    else:
        return lambda value: value
    return _optional(convert) if optional else convert


@functools.cache
def _reader(hint: Any) -> Convert:
    inner, optional = _inner(hint)
    if typing.get_origin(inner) is tuple:
        item = _reader(typing.get_args(inner)[0])
        convert: Convert = lambda values: tuple(item(value) for value in values)  # noqa: E731
    elif (names := _field_names(inner)) is not None:
        hints = typing.get_type_hints(inner)
        fields = [(name, _reader(hints[name])) for name in names]
        view_type = inner
        # Fields the data lacks take the view's defaults (data kept before they existed).
        convert = lambda data: view_type(  # noqa: E731
            **{name: read(data[name]) for name, read in fields if name in data}
        )
    elif inner is Decimal:
        convert = Decimal
    elif inner is datetime:
        convert = datetime.fromisoformat
    elif isinstance(inner, type) and issubclass(inner, enum.Enum):
        convert = inner
    else:
        return lambda value: value
    return _optional(convert) if optional else convert


def to_plain(view: Any) -> dict[str, Any]:
    """A view (a NamedTuple of the application's views, holding NamedTuples and frozen
    dataclasses) as dicts, lists, strings, numbers."""
    write: Convert = _writer(type(view))  # type: ignore[arg-type]  # a class is hashable
    plain: dict[str, Any] = write(view)
    return plain


def from_plain(view_type: type[V], data: Any) -> V:
    """The view of type ``view_type`` that ``to_plain`` made ``data`` of."""
    read: Convert = _reader(view_type)  # type: ignore[arg-type]  # a class is hashable
    view: V = read(data)
    return view
