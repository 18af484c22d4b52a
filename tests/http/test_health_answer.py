"""``GET /health`` answered before Litestar's middleware and routing: the same bytes and
headers as the route, an id and a count like every answer."""

import httpx
from litestar import Litestar


async def test_the_quick_health_answer_is_the_routes_answer(
    running_app: Litestar, anonymous: httpx.AsyncClient
) -> None:
    """The quick answer's body and content headers equal the route's (reached here with an
    ``Origin``, which only the route answers, with CORS headers)."""
    for path in ("/health", "/api/v1/health"):
        quick = await anonymous.get(path)
        routed = await anonymous.get(path, headers={"Origin": "https://ui.example"})
        assert routed.headers["access-control-allow-origin"] == "https://ui.example"
        assert "access-control-allow-origin" not in quick.headers
        assert quick.status_code == routed.status_code == 200
        assert quick.content == routed.content
        for header in ("content-type", "content-length"):
            assert quick.headers[header] == routed.headers[header]
        assert quick.headers["x-request-id"] != routed.headers["x-request-id"]


async def test_the_quick_health_answer_follows_the_state(
    running_app: Litestar, anonymous: httpx.AsyncClient
) -> None:
    """Once the worker and scheduler stop, the quick answer says degraded at once."""
    assert (await anonymous.get("/health")).json()["status"] == "healthy"
    await running_app.state.spark.stop(grace=0)
    assert (await anonymous.get("/health")).json()["status"] == "degraded"


async def test_the_quick_health_answer_is_counted_under_its_route(
    running_app: Litestar, anonymous: httpx.AsyncClient
) -> None:
    """Quick and routed answers are counted under the same route label, the path."""
    await anonymous.get("/health")
    await anonymous.get("/health", headers={"Origin": "https://ui.example"})
    text = running_app.state.metrics.render().decode()
    counted = [line for line in text.splitlines()
               if line.startswith("spark_http_requests_total{") and 'route="/health"' in line]
    assert len(counted) == 1
    assert counted[0].endswith(" 2.0"), counted
