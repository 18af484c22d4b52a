"""Ids named by a unique prefix, as git takes commit hashes: the one place that resolves them."""

from spark_core.errors import AmbiguousIdError, NotFoundError
from spark_core.ports import IdKind, Store

FULL_ID_LENGTH = 36
"""A whole id (a UUID in its text form); it is used as given, without a look-up."""

CANDIDATES_SHOWN = 10


class IdService:
    """Turns what a user typed (a whole id, or a unique start of one) into the id it names."""

    def __init__(self, *, store: Store) -> None:
        self._store = store

    async def resolve(self, kind: IdKind, text: str) -> str:
        """The one id of ``kind`` that starts with ``text``; ``text`` itself when it is a whole
        id, or (for a workflow) a local or remote id that names one. ``NotFoundError`` when no
        id starts with it, ``AmbiguousIdError`` listing the candidates when several do."""
        if len(text) >= FULL_ID_LENGTH:
            return text
        if kind is IdKind.WORKFLOW:
            workflow = await self._store.workflows.find(text, definition=False)
            if workflow is not None:
                return workflow.id
        prefix = text.lower()
        found = await self._store.ids_with_prefix(kind, prefix, limit=CANDIDATES_SHOWN + 1)
        if not found:
            raise NotFoundError(f"{kind.capitalize()} {text} not found")
        if len(found) > 1:
            shown = found[:CANDIDATES_SHOWN]
            more = ", …" if len(found) > CANDIDATES_SHOWN else ""
            raise AmbiguousIdError(
                f"Id prefix {text} is ambiguous: it starts the ids of several {kind}s: "
                f"{', '.join(shown)}{more}")
        return found[0]
