"""``GET /metrics``: this process's metrics in the Prometheus text format.

Guarded by the API key (as ``X-API-Key`` or ``Authorization: Bearer``) unless
``SPARK_METRICS_PUBLIC=true`` lets a scraper on a private network in without one.
"""

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.exceptions import NotAuthorizedException

from spark_adapters.metrics import CONTENT_TYPE
from spark_http.auth import INVALID_KEY
from spark_http.dependencies import SparkFacade

MISSING = "An API key is needed: send X-API-Key or Authorization: Bearer"


class MetricsController(Controller):
    """Prometheus metrics."""

    path = "/metrics"
    tags = ["metrics"]
    include_in_schema = False

    @get("", media_type=CONTENT_TYPE)
    async def metrics(self, request: Request[Any, Any, Any],
                      spark: SparkFacade) -> Response[bytes]:
        """Counters, gauges and histograms of this process (task runs, schedule fires, worker
        slots, source and API requests, build info)."""
        state = request.app.state
        if not state.metrics_public:
            presented = request.headers.get("x-api-key")
            bearer = request.headers.get("authorization", "")
            if not presented and bearer.lower().startswith("bearer "):
                presented = bearer[7:].strip()
            if not presented:
                raise NotAuthorizedException(detail=MISSING,
                                             headers={"WWW-Authenticate": "Bearer"})
            if not state.auth.accepts(presented):
                raise NotAuthorizedException(detail=INVALID_KEY,
                                             headers={"WWW-Authenticate": "Bearer"})
        metrics = state.metrics
        await metrics.refresh(spark.store)
        return Response(content=metrics.render(), media_type=CONTENT_TYPE)
