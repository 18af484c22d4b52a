"""``SqliteNodeRegistry``: which Spark processes on one database file are alive, told by locks.

Each process registers an owner by holding an exclusive ``flock`` on
``<database dir>/nodes/<owner>.lock`` for as long as its store is open; the kernel drops the
lock when the process ends, however it ends. ``dead`` tries to take every other owner's lock
without waiting: getting it proves that owner's process is gone. The file holds the owner
string itself, since its name is a sanitised (and, when long, shortened) form of it.

Without ``fcntl`` (Windows), or for ``:memory:``, registering does nothing and nobody is ever
reported dead: runs of a gone process are then recovered when their leases run out.
"""

import asyncio
import contextlib
import hashlib
import os
from pathlib import Path
from urllib.parse import quote, unquote

from spark_core.errors import ConflictError
from spark_core.ports import NodeRegistry

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock
    fcntl = None  # type: ignore[assignment]

_SUFFIX = ".lock"
_MAX_NAME = 200
"""File names stay well below the usual 255-byte limit."""
_PRIVATE_FILE = 0o600
_REGISTER_ATTEMPTS = 20
_REGISTER_RETRY_SECONDS = 0.05
_PRIVATE_DIRECTORY = 0o700


def lock_file_name(owner: str) -> str:
    """The lock file name for ``owner``: percent-encoded, shortened with a digest if long."""
    name = quote(owner, safe="-_.~@+=,")
    if len(name) > _MAX_NAME:
        digest = hashlib.sha256(owner.encode()).hexdigest()[:16]
        name = f"{name[:_MAX_NAME - 17]}-{digest}"
    return name + _SUFFIX


def _try_lock(descriptor: int) -> bool:
    """Take an exclusive lock without waiting; False if another process holds it."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(descriptor: int, path: Path) -> bool:
    """True when ``path`` still names the open file (nobody removed or replaced it)."""
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


class SqliteNodeRegistry(NodeRegistry):
    """The ``NodeRegistry`` port on lock files beside the database."""

    def __init__(self, database_path: str | Path | None) -> None:
        """``database_path`` ``None`` (an in-memory store) disables the registry."""
        self._directory = (
            None if database_path is None or fcntl is None
            else Path(database_path).parent / "nodes"
        )
        self._held: dict[str, int] = {}

    async def register(self, owner: str) -> None:
        """Hold ``owner``'s lock until ``unregister`` or ``close``; ``ConflictError`` if a
        live process already registered the same owner."""
        if self._directory is None or owner in self._held:
            return
        self._directory.mkdir(mode=_PRIVATE_DIRECTORY, parents=True, exist_ok=True)
        path = self._directory / lock_file_name(owner)
        for _ in range(_REGISTER_ATTEMPTS):
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, _PRIVATE_FILE)
            if _try_lock(descriptor) and _same_file(descriptor, path):
                break
            # Held by a live process, or by another node's ``dead`` scan for a moment (which
            # may then remove the file): look again shortly.
            os.close(descriptor)
            await asyncio.sleep(_REGISTER_RETRY_SECONDS)
        else:
            raise ConflictError(f"Node {owner} is already registered by a live process")
        os.ftruncate(descriptor, 0)
        os.write(descriptor, owner.encode())
        self._held[owner] = descriptor

    async def unregister(self, owner: str) -> None:
        """Withdraw ``owner``: remove its file, then release its lock."""
        descriptor = self._held.pop(owner, None)
        if descriptor is None or self._directory is None:
            return
        with contextlib.suppress(FileNotFoundError):
            (self._directory / lock_file_name(owner)).unlink()
        os.close(descriptor)

    async def dead(self) -> list[str]:
        """Owners whose process is gone: their lock could be taken. Each is reported once (its
        file is removed), so one caller recovers its runs."""
        if self._directory is None:
            return []
        try:
            paths = sorted(self._directory.glob(f"*{_SUFFIX}"))
        except OSError:
            return []
        ours = {lock_file_name(owner) for owner in self._held}
        gone: list[str] = []
        for path in paths:
            if path.name not in ours:
                owner = _claim_if_dead(path)
                if owner is not None:
                    gone.append(owner)
        return gone

    def close(self) -> None:
        """Release every lock this store holds, leaving the files: a store closed without
        ``unregister`` is reported dead, so its unfinished runs are recovered at once."""
        descriptors, self._held = list(self._held.values()), {}
        for descriptor in descriptors:
            os.close(descriptor)


def _claim_if_dead(path: Path) -> str | None:
    """The owner of ``path`` if its process is gone (the file is then removed), else None."""
    try:
        descriptor = os.open(path, os.O_RDWR)
    except OSError:  # removed meanwhile, or not ours to judge
        return None
    try:
        if not _try_lock(descriptor) or not _same_file(descriptor, path):
            return None
        recorded = os.read(descriptor, 64 * 1024).decode(errors="replace")
        path.unlink()
    except OSError:
        return None
    finally:
        os.close(descriptor)
    return recorded or unquote(path.name.removesuffix(_SUFFIX))
