"""Mapping between domain Structs and table rows.

Datetimes are stored as ISO-8601 UTC text in one fixed format
(``%Y-%m-%dT%H:%M:%S.%f+00:00``), so comparing the text orders the instants. JSON fields are
stored as JSON text. Everything else maps by field name through ``msgspec``.
"""

import enum
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

S = TypeVar("S", bound=msgspec.Struct)

_json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder()


def encode_datetime(value: datetime) -> str:
    """``value`` as fixed-format UTC text; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def encode_optional_datetime(value: datetime | None) -> str | None:
    """``encode_datetime`` that lets ``None`` through."""
    return None if value is None else encode_datetime(value)


def decode_datetime(text: str) -> datetime:
    """The timezone-aware UTC datetime stored as ``text``."""
    return datetime.fromisoformat(text).astimezone(UTC)


def json_text(value: Any) -> str | None:
    """``value`` as the JSON text a JSON column stores; ``None`` stays ``None`` (SQL NULL)."""
    return None if value is None else _json_encoder.encode(value).decode()


def struct_to_row(item: msgspec.Struct, *, json_fields: Iterable[str]) -> dict[str, Any]:
    """A row for ``item``: datetimes as UTC text, enums as values, JSON fields as JSON text."""
    return encode_columns(msgspec.structs.asdict(item), json_fields=json_fields)


def encode_columns(values: dict[str, Any], *, json_fields: Iterable[str]) -> dict[str, Any]:
    """Column values for field values (a whole row, or the fields a patch sets), encoded as
    ``struct_to_row`` does; ``values`` is changed in place and returned."""
    for name in json_fields:
        if name in values:
            values[name] = json_text(values[name])
    for name, value in values.items():
        if isinstance(value, datetime):
            values[name] = encode_datetime(value)
        elif isinstance(value, enum.Enum):
            values[name] = value.value
    return values


def struct_from_row(struct_type: type[S], row: Mapping[str, Any], *,
                    json_fields: Iterable[str]) -> S:
    """The Struct stored as ``row``; columns the Struct does not declare are ignored."""
    data = dict(row)
    for name in json_fields:
        value = data.get(name)
        if value is not None:
            data[name] = _json_decoder.decode(value)
    return msgspec.convert(data, struct_type, strict=False)


def column_names(struct_type: type[msgspec.Struct]) -> tuple[str, ...]:
    """The columns that hold ``struct_type``'s fields, in declaration order."""
    return tuple(field.name for field in msgspec.structs.fields(struct_type))
