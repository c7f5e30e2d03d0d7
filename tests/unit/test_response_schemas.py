"""Every response schema, compiled, writes exactly what marshmallow's own machinery writes.

One generic test: objects are generated from each schema's declared fields (so a new schema or
a new field is covered without a line here), dumped by the compiled dumper and by marshmallow,
and compared.
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import marshmallow as ma
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import opply.entrypoints.api.problems  # noqa: F401 - defines schemas too
from opply.entrypoints.api import schemas
from opply.entrypoints.api.dumping import (
    Rendered,
    UnsupportedField,
    compile_dumper,
    compiled_dumper,
)


def _response_schemas() -> list[type[schemas.ViewSchema]]:
    found: list[type[schemas.ViewSchema]] = []
    pending = [schemas.ViewSchema]
    while pending:
        for cls in pending.pop().__subclasses__():
            found.append(cls)
            pending.append(cls)
    return found


def _values(field: ma.fields.Field[Any]) -> st.SearchStrategy[Any]:
    strategy: st.SearchStrategy[Any]
    if isinstance(field, schemas.Money):
        strategy = st.decimals(min_value=0, max_value=Decimal("9999999999.99"), places=2)
    elif isinstance(field, schemas.UtcDateTime):
        strategy = st.datetimes(timezones=st.just(UTC))
    elif isinstance(field, ma.fields.Boolean):
        strategy = st.booleans()
    elif isinstance(field, ma.fields.Integer):
        strategy = st.integers(-(2**40), 2**40)
    elif isinstance(field, ma.fields.String):
        strategy = st.text(max_size=30)
    elif isinstance(field, ma.fields.Nested):
        inner = _objects(type(field.schema))
        strategy = st.lists(inner, max_size=3) if field.many else inner
    elif isinstance(field, ma.fields.List):
        strategy = st.lists(_values(field.inner), max_size=3)
    else:
        raise AssertionError(f"no values for {type(field).__name__}")
    return st.one_of(st.none(), strategy) if field.allow_none else strategy


def _objects(schema: type[ma.Schema]) -> st.SearchStrategy[SimpleNamespace]:
    """Objects with an attribute for each field ``schema`` dumps."""
    fields = schema().dump_fields
    return st.fixed_dictionaries(
        {field.attribute or name: _values(field) for name, field in fields.items()}
    ).map(lambda values: SimpleNamespace(**values))


@pytest.mark.parametrize("schema", _response_schemas(), ids=lambda s: s.__name__)
def test_each_response_schema_writes_what_marshmallow_writes(schema: type[ma.Schema]) -> None:
    @settings(max_examples=60, deadline=None)
    @given(st.lists(_objects(schema), min_size=1, max_size=3))
    def compare(objects: list[SimpleNamespace]) -> None:
        compiled = schema()
        assert compiled.dump(objects[0]) == ma.Schema.dump(compiled, objects[0])
        assert compiled.dump(objects, many=True) == ma.Schema.dump(compiled, objects, many=True)

    compare()


def test_there_are_response_schemas_to_compare() -> None:
    names = {schema.__name__ for schema in _response_schemas()}
    assert {"ProductSchema", "OrderSchema", "ProductPageSchema", "OrderPageSchema"} <= names


def test_a_body_already_written_is_sent_as_it_is() -> None:
    body = Rendered(id=1, anything="kept")
    assert schemas.OrderSchema().dump(body) is body


def test_a_schema_with_a_field_it_cannot_compile_fails_at_start_up() -> None:
    class Odd(ma.Schema):
        when = ma.fields.TimeDelta()

    with pytest.raises(UnsupportedField, match="when"):
        compile_dumper(Odd())


def test_a_schema_is_compiled_once_and_keys_follow_data_key() -> None:
    class Keyed(schemas.ViewSchema):
        value = ma.fields.Integer(data_key="Value-Key")

    assert compiled_dumper(Keyed) is compiled_dumper(Keyed())
    assert Keyed().dump(SimpleNamespace(value=3)) == {"Value-Key": 3}
