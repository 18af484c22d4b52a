"""Health and service information: ``/health``, ``/api/v1/health`` and ``/``."""

import functools
import importlib.metadata
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Request, get
from litestar.datastructures import State

from spark_core.facade import Spark
from spark_http.auth import SECURITY_SCHEME
from spark_http.dependencies import SparkFacade
from spark_http.docs import DOCS_URL, OPENAPI_URL, REDOC_URL, mount_prefix
from spark_http.observability import HEALTH_PATHS
from spark_http.schemas import HealthOut, ServiceInfo


@functools.cache
def package_version() -> str:
    """The installed version of Spark (read once: importlib.metadata parses the package's
    metadata file on every call, about 0.3 ms, two thirds of a ``/health`` answer)."""
    try:
        return importlib.metadata.version("spark")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+unknown"


class HealthController(Controller):
    """Liveness for load balancers and monitors; no key needed."""

    path = "/"
    tags = ["health"]

    @get(sorted(HEALTH_PATHS))
    async def health(self, spark: SparkFacade, state: State) -> HealthOut:
        """``healthy`` when the database answers and the scheduler and worker run (if this
        server runs them); ``degraded`` otherwise. Answers in milliseconds."""
        return health_of(spark.health(), background=bool(state.get("run_background", True)))


def health_of(services: dict[str, str], *, background: bool) -> HealthOut:
    """The health answer for the state of each part (``Spark.health``), which the process
    already knows: no I/O."""
    parts_running = services["scheduler"] == "running" and services["worker"] == "running"
    healthy = services["database"] == "ok" and (parts_running or not background)
    return HealthOut(
        status="healthy" if healthy else "degraded",
        version=package_version(),
        services=services,
    )


def encoded_health(spark: Spark, *, background: bool) -> bytes:
    """``health_of`` as the JSON body the route answers, encoded once per distinct state."""
    return _encoded(background, tuple(spark.health().items()))


@functools.lru_cache(maxsize=32)
def _encoded(background: bool, services: tuple[tuple[str, str], ...]) -> bytes:
    return msgspec.json.encode(health_of(dict(services), background=background))


class InfoController(Controller):
    """What this server is."""

    path = "/"
    tags = ["health"]
    security = [{SECURITY_SCHEME: []}]

    @get("/")
    async def info(self, request: Request[Any, Any, Any]) -> ServiceInfo:
        """The service name, version, server time and where the docs are (under the prefix
        the server is mounted at, if any)."""
        prefix = mount_prefix(request.scope)
        return ServiceInfo(
            status="online",
            service="Spark API",
            name="Spark",
            message=f"Welcome to Spark API, use {prefix}{DOCS_URL} to see the API documentation",
            version=package_version(),
            server_time=datetime.now(UTC),
            docs_url=prefix + DOCS_URL,
            redoc_url=prefix + REDOC_URL,
            openapi_url=prefix + OPENAPI_URL,
        )
