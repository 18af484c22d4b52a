"""Spark adapters: the technologies behind the core's ports, and the way to open Spark.

``connect()`` opens Spark for a program in one line; ``build_container`` and ``open_spark`` are
the composition root underneath it, for programs that override adapters. Names are imported on
first use, so that importing one adapter module (as the CLI does) stays cheap.
"""

from typing import TYPE_CHECKING

from spark_core.lazy import lazy_exports

if TYPE_CHECKING:
    from spark_adapters.clock import SystemClock
    from spark_adapters.connector import SourceFactory, SourceRegistry
    from spark_adapters.container import Container, build_container, open_spark
    from spark_adapters.hive import HiveSource
    from spark_adapters.http_session import HttpResponse, SourceHttp
    from spark_adapters.langflow import LangflowSource
    from spark_adapters.library import connect
    from spark_adapters.secrets import FernetSecretBox
    from spark_adapters.settings import Settings, load_settings
    from spark_adapters.sqlite import SqliteStore

__all__ = [
    "Container",
    "FernetSecretBox",
    "HiveSource",
    "HttpResponse",
    "LangflowSource",
    "Settings",
    "SourceFactory",
    "SourceHttp",
    "SourceRegistry",
    "SqliteStore",
    "SystemClock",
    "build_container",
    "connect",
    "load_settings",
    "open_spark",
]

_HOMES = {
    "Container": "container",
    "FernetSecretBox": "secrets",
    "HiveSource": "hive",
    "HttpResponse": "http_session",
    "LangflowSource": "langflow",
    "Settings": "settings",
    "SourceFactory": "connector",
    "SourceHttp": "http_session",
    "SourceRegistry": "connector",
    "SqliteStore": "sqlite",
    "SystemClock": "clock",
    "build_container": "container",
    "connect": "library",
    "load_settings": "settings",
    "open_spark": "container",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
