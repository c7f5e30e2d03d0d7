"""Response bodies written from a schema's declared fields by one generic, compiled dumper.

A response schema declares the wire format once: its fields make the OpenAPI document, and,
compiled here once per schema, the function that writes a view as JSON-ready data. marshmallow's
own ``dump`` walks every field of every object through several layers of calls, which was the
largest CPU cost of a product or order page; the compiled dumper is one Python function per
schema whose body reads each attribute and converts it the way that field type does
(``Integer`` -> ``int``, ``String`` -> ``str``, ``Money`` -> ``"12.50"``, ``Nested`` and
``List`` -> the inner schema's dumper). A test writes random views through both and compares.

Only the field types below are compiled; a schema with any other field fails at start-up, with
the field named, rather than answering differently from its documentation.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import Any

import marshmallow as ma

Dumper = Callable[[Any], dict[str, Any]]


class Rendered(dict[str, Any]):
    """A body already in its wire format (written by a compiled dumper earlier, e.g. the answer
    kept for an Idempotency-Key): a schema sends it as it is."""


class UnsupportedField(TypeError):
    pass


# Conversions of a non-None value, as each marshmallow field type serialises it.
_SIMPLE: tuple[tuple[type[ma.fields.Field[Any]], Callable[[Any], Any]], ...] = (
    (ma.fields.Boolean, bool),
    (ma.fields.Integer, int),
    (ma.fields.String, str),
)


def _converter(field: ma.fields.Field[Any]) -> Callable[[Any], Any]:
    """The conversion of one value of ``field``; a field may offer its own (``convert``)."""
    own = getattr(field, "convert", None)
    if callable(own):
        return own
    for field_type, convert in _SIMPLE:
        # Only the type itself or a subclass that serialises the same way (e.g. Email).
        if isinstance(field, field_type) and type(field)._serialize is field_type._serialize:
            return convert
    if isinstance(field, ma.fields.Nested):
        inner = compiled_dumper(field.schema)
        if field.many:
            return lambda values: [inner(value) for value in values]
        return inner
    if isinstance(field, ma.fields.List):
        item = _converter(field.inner)
        return lambda values: [item(value) for value in values]
    raise UnsupportedField(f"{type(field).__name__} cannot be compiled (field {field.name!r})")


def compile_dumper(schema: ma.Schema) -> Dumper:
    """One function writing an object's ``schema.dump_fields`` into a dict, keys in order."""
    names: dict[str, Any] = {}
    items: list[str] = []
    for index, (name, field) in enumerate(schema.dump_fields.items()):
        attribute = field.attribute or name
        key = field.data_key or name
        convert = f"_c{index}"
        names[convert] = _converter(field)
        if attribute.isidentifier() and not keyword.iskeyword(attribute):
            value = f"obj.{attribute}"
        else:
            value = f"getattr(obj, {attribute!r})"
        if field.allow_none:
            items.append(
                f"{key!r}: (None if (v{index} := {value}) is None else {convert}(v{index}))"
            )
        else:
            items.append(f"{key!r}: {convert}({value})")
    source = "def dump(obj):\n    return {" + ", ".join(items) + "}\n"
    # Generated from the schema's own declarations (names, keys and converters above), never
    # from anything a client sends.
    exec(source, names)  # noqa: S102
    dump: Dumper = names["dump"]
    dump.__doc__ = f"Write an object as {type(schema).__name__} declares it.\n\n{source}"
    return dump


_COMPILED: dict[type[ma.Schema], Dumper] = {}


def compiled_dumper(schema: ma.Schema | type[ma.Schema]) -> Dumper:
    """The dumper of a schema class with no ``only``/``exclude``: compiled once, then shared."""
    instance = schema() if isinstance(schema, type) else schema
    if instance.only or instance.exclude:
        return compile_dumper(instance)
    cls = type(instance)
    if cls not in _COMPILED:
        _COMPILED[cls] = compile_dumper(instance)
    return _COMPILED[cls]
