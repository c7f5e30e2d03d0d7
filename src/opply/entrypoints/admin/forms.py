"""Admin form input, parsed by the same marshmallow schemas as the API's JSON.

A form sends text: whole numbers arrive as digits, an unticked box not at all. ``parse``
turns the text into the types the schema declares (digits into an ``int`` for an ``Integer``
field, a ticked box into ``True``, a number or an amount without stray spaces), leaves empty
inputs out, and loads the result with the schema, so a price, a name or a quantity obeys one set
of rules in the API and in the admin. Text is passed as typed: a name's own rule trims it, and a
password's spaces are part of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import marshmallow as ma

from opply.entrypoints.api.schemas import Money

_WHOLE_NUMBER = re.compile(r"^-?\d{1,12}$")


@dataclass(frozen=True, kw_only=True)
class FormField:
    """How a form shows one field of a schema: the same declaration that parses it."""

    name: str
    label: str
    kind: str  # "text", "number", "textarea" or "checkbox"
    required: bool
    max_length: int | None
    placeholder: str


def form_fields(schema: ma.Schema) -> list[FormField]:
    """The inputs of a form for ``schema``, in its declared order (a field's metadata may give
    its ``label`` and ``widget``; its example is the input's placeholder)."""
    shown = []
    for name, field in schema.load_fields.items():
        length = next(
            (v.max for v in _validators(field) if isinstance(v, ma.validate.Length)), None
        )
        if isinstance(field, ma.fields.Boolean):
            kind = "checkbox"
        elif isinstance(field, ma.fields.Integer):
            kind = "number"
        else:
            kind = field.metadata.get("widget", "text")
        example = field.metadata.get("example")
        shown.append(
            FormField(
                name=field.data_key or name,
                label=field.metadata.get("label", name.replace("_", " ").capitalize()),
                kind=kind,
                required=field.required,
                max_length=length,
                placeholder="" if example is None else str(example),
            )
        )
    return shown


def _validators(field: ma.fields.Field[Any]) -> list[Any]:
    return list(field.validators)


class FormError(Exception):
    """A form that does not fit its schema; ``detail`` says which field and why."""

    def __init__(self, messages: dict[str, Any]) -> None:
        self.messages = messages
        parts = []
        for field, problems in messages.items():
            text = "; ".join(str(p) for p in problems) if isinstance(problems, list) else problems
            label = "" if field in ("_schema", "_") else field.replace("_", " ").capitalize() + ": "
            parts.append(f"{label}{text}")
        self.detail = " ".join(parts)
        super().__init__(self.detail)


def parse(schema: ma.Schema, form: Mapping[str, str], *, keep_blank: bool = False) -> Any:
    """The form's fields that ``schema`` declares, typed and validated by it."""
    data: dict[str, Any] = {}
    for name, field in schema.load_fields.items():
        key = field.data_key or name
        if isinstance(field, ma.fields.Boolean):
            data[key] = form.get(key) in ("on", "true", "1")
            continue
        if key not in form:
            continue
        text = form[key]
        if isinstance(field, ma.fields.Integer | Money):
            text = text.strip()  # a number typed with a stray space is still that number
        if not text and not keep_blank:
            continue
        if isinstance(field, ma.fields.Integer) and _WHOLE_NUMBER.match(text):
            data[key] = int(text)
        else:
            data[key] = text
    try:
        return schema.load(data)
    except ma.ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"_": error.messages}
        raise FormError(messages) from None
