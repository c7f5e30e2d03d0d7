"""Views as plain data (JSON's types) and back, for what the application keeps: an event's order.

One generic pair, driven by each view's own annotations, so a field added to a view is kept and
read back without touching this file. Decimals travel as strings (exact), datetimes as ISO 8601
with their offset, enums as their values. This is the application's storage form, not a wire
format: the entrypoints still write every answer through their schemas.
"""

from __future__ import annotations

import enum
import functools
import types
import typing
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

V = TypeVar("V")


def to_plain(value: Any) -> Any:
    """``value`` (a view, or anything a view holds) as dicts, lists, strings, numbers, None."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {name: to_plain(getattr(value, name)) for name in value._fields}
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        # UTC as the API writes it ("Z"): what a release before 1.2 kept for an
        # Idempotency-Key was the wire format, and reads the same way.
        return value.isoformat().replace("+00:00", "Z")
    return value


@functools.cache
def _hints(view_type: type) -> dict[str, Any]:
    return typing.get_type_hints(view_type)


def from_plain(view_type: type[V], data: Any) -> V:
    """The view of type ``view_type`` that ``to_plain`` made ``data`` of. Fields the data lacks
    take the view's defaults (data kept before the field existed)."""
    return _read(view_type, data)  # type: ignore[no-any-return]


def _read(hint: Any, data: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if data is None:
            return None
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _read(inner, data)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_read(item, value) for value in data)
    if isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields"):
        hints = _hints(hint)
        kept = (name for name in hint._fields if name in data)
        return hint(**{name: _read(hints[name], data[name]) for name in kept})
    if hint is Decimal:
        return Decimal(data)
    if hint is datetime:
        return datetime.fromisoformat(data)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(data)
    return data
