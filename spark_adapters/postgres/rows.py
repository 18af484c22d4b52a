"""Mapping between domain Structs and PostgreSQL rows.

Datetimes travel as timezone-aware values (a naive one is taken to be UTC) and come back in
UTC whatever the session's time zone. JSON fields are ``jsonb``; enums are stored as their
values. Everything else maps by field name through ``msgspec``.
"""

import enum
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from psycopg.types.json import Jsonb

S = TypeVar("S", bound=msgspec.Struct)

_json_encoder = msgspec.json.Encoder()


def _dumps(value: Any) -> str:
    # PostgreSQL refuses NUL in text and jsonb; a remote answer may carry one.
    return _json_encoder.encode(value).decode().replace("\\u0000", "\\ufffd")


def utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def json_param(value: Any) -> Jsonb | None:
    """A ``jsonb`` parameter for ``value`` (SQL NULL for ``None``)."""
    return None if value is None else Jsonb(value, dumps=_dumps)


def json_text(value: Any) -> str | None:
    """``value`` as JSON text for a ``jsonb`` column (cast in SQL)."""
    return None if value is None else _dumps(value)


def as_stored(value: Any, text: str | None) -> Any:
    """``value`` as PostgreSQL keeps it, given ``json_text(value)``: itself, unless it held a
    NUL character (then what the text decodes to, with U+FFFD instead)."""
    if text is None or "\\ufffd" not in text:
        return value
    return msgspec.json.decode(text)


def text_param(value: str | None) -> str | None:
    """A text parameter PostgreSQL accepts: NUL characters become U+FFFD."""
    return None if value is None else value.replace("\x00", "\ufffd")


def param(value: Any) -> Any:
    """One column value as a query parameter: UTC datetimes, enum values, the rest as is."""
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def struct_to_row(item: msgspec.Struct, *, json_fields: Iterable[str]) -> dict[str, Any]:
    """A row of parameters for ``item``: see ``param``; JSON fields as ``jsonb``."""
    row = {name: param(value) for name, value in msgspec.structs.asdict(item).items()}
    for name in json_fields:
        row[name] = json_param(row[name])
    return row


def struct_from_row(struct_type: type[S], row: Mapping[str, Any]) -> S:
    """The Struct stored as ``row``; columns the Struct does not declare are ignored."""
    data = {
        name: utc(value) if isinstance(value, datetime) else value
        for name, value in row.items()
    }
    return msgspec.convert(data, struct_type, strict=False)


def column_names(struct_type: type[msgspec.Struct]) -> tuple[str, ...]:
    """The columns that hold ``struct_type``'s fields, in declaration order."""
    return tuple(field.name for field in msgspec.structs.fields(struct_type))
