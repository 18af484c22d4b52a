"""``create_app``: the Litestar application over a Spark container.

The lifespan opens the container's resources (the shared HTTP session, the store), builds the
``Spark`` facade and, unless told not to, starts the worker and scheduler in the server's event
loop; on shutdown it stops them with a grace period and closes everything. Handlers receive the
services through a few small providers reading ``app.state``; nothing else is global. The
dashboard (``spark_http.ui``) is served at ``/ui`` beside the API, with its own session guard.
"""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from spark_adapters.container import Container, open_spark
from spark_adapters.settings import Settings
from spark_core.facade import Spark
from spark_http.auth import API_KEY_HEADER, SECURITY_SCHEME, ApiKeyAuth, ApiKeyMiddleware
from spark_http.dependencies import dependencies
from spark_http.docs import DOCS_URL, render_plugins, static_files, with_servers
from spark_http.errors import exception_handlers
from spark_http.observability import ObservedApp
from spark_http.routes import CONTROLLERS
from spark_http.routes.health import package_version
from spark_http.schemas import SparkResponse
from spark_http.ui import SessionSigner, TaskFeed, template_config, ui_router
from spark_http.ui import static_files as ui_static_files

SHUTDOWN_GRACE = 10.0


@get("/api/v1/openapi.json", include_in_schema=False, sync_to_thread=False)
def openapi_document(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The OpenAPI document (also served under the docs path), naming as its server the prefix
    the app is mounted at."""
    return with_servers(request, request.app.openapi_schema.to_schema())


def openapi_config() -> OpenAPIConfig:
    """Docs at ``/api/v1/docs`` and the ``X-API-Key`` security scheme."""
    return OpenAPIConfig(
        title="Spark",
        version=package_version(),
        description=(
            "Spark gives AI workflows a sense of time: sync LangFlow and Automagik Hive flows, "
            "run them on demand and on schedules, and record every run. Send your key in the "
            f"`{API_KEY_HEADER}` header."
        ),
        path=DOCS_URL,
        use_handler_docstrings=True,
        render_plugins=render_plugins(),
        components=Components(
            security_schemes={
                SECURITY_SCHEME: SecurityScheme(
                    type="apiKey",
                    name=API_KEY_HEADER,
                    security_scheme_in="header",
                    description="One of the keys configured in SPARK_API_KEY",
                )
            }
        ),
    )


def create_app(
    container: Container,
    *,
    spark: Spark | None = None,
    run_background: bool = True,
    shutdown_grace: float = SHUTDOWN_GRACE,
) -> Litestar:
    """The REST API over ``container``.

    With ``run_background`` the worker and scheduler run in the server's event loop for its
    lifetime; without it another process (``spark worker``) or the embedding program runs them.

    With ``spark`` (a facade the embedding program already opened, for example with
    ``open_spark(container)`` in its own lifespan) the app serves that facade and its lifespan
    opens, starts and stops nothing: the program owns the facade's lifecycle, which is what an
    app mounted inside another ASGI app needs, since hosts do not run a mounted app's lifespan.
    ``run_background`` then only tells the health route whether the worker and scheduler are
    expected to run. Raises ``ValueError`` when no API key is configured: the server never runs
    open.
    """
    settings: Settings = container.settings()
    auth = ApiKeyAuth(settings.api_keys)
    metrics = container.metrics()
    feed = TaskFeed()
    state = State({"auth": auth, "run_background": run_background, "metrics": metrics,
                   "metrics_public": settings.metrics_public,
                   "ui_sessions": SessionSigner(settings.api_keys), "ui_feed": feed})
    if spark is not None:
        state.spark = spark

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if spark is not None:  # the embedding program opened it and will close it
            try:
                yield
            finally:
                feed.close()
            return
        async with open_spark(container) as opened:
            app.state.spark = opened
            # Without the background parts this still listens for hints and watches health.
            await opened.start(worker=run_background, scheduler=run_background)
            try:
                yield
            finally:
                feed.close()  # live dashboard streams end now, not at the client's leisure
                await opened.stop(grace=shutdown_grace)

    app = ObservedApp(
        route_handlers=[*CONTROLLERS, openapi_document, static_files(), ui_router(),
                        ui_static_files()],
        template_config=template_config(),
        dependencies=dependencies(state),
        middleware=[ApiKeyMiddleware(auth)],
        exception_handlers=exception_handlers(),
        lifespan=[lifespan],
        state=state,
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins)),
        openapi_config=openapi_config(),
        response_class=SparkResponse,
        logging_config=None,
        debug=False,
    )
    app.spark_metrics = metrics
    return app
