"""Lazy public names for a package: import each from its module on first use, so importing the
package stays cheap (the CLI's start-up time depends on it)."""

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(
    package: str, homes: Mapping[str, str], namespace: dict[str, object]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``homes`` maps each public name to the
    submodule defining it; a resolved name is cached in the package ``namespace``."""

    def __getattr__(name: str) -> object:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *homes})

    return __getattr__, __dir__
