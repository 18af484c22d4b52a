"""The API key guards everything under /api/v1 and GET /, and nothing else."""

import httpx
import pytest

from spark_adapters.container import build_container
from spark_adapters.settings import Settings
from spark_http.app import create_app
from tests.http.conftest import SECOND_KEY

Client = httpx.AsyncClient


async def test_missing_key_is_401_with_detail_and_challenge(anonymous: Client) -> None:
    """A protected route without a key answers 401, names the header, and challenges."""
    response = await anonymous.get("/api/v1/sources")
    assert response.status_code == 401
    assert response.json() == {"detail": "X-API-Key header is missing", "status_code": 401}
    assert response.headers["WWW-Authenticate"] == "ApiKey"


async def test_wrong_key_is_401_invalid_api_key(anonymous: Client) -> None:
    """A wrong key answers 401 'Invalid API key' with the challenge header."""
    response = await anonymous.get("/api/v1/tasks", headers={"X-API-Key": "nope"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid API key", "status_code": 401}
    assert response.headers["WWW-Authenticate"] == "ApiKey"


async def test_second_configured_key_is_accepted(anonymous: Client) -> None:
    """Every configured key works, so keys can be rotated."""
    response = await anonymous.get("/api/v1/tasks", headers={"X-API-Key": SECOND_KEY})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "path", ["/health", "/api/v1/health", "/api/v1/docs", "/api/v1/openapi.json"]
)
async def test_public_routes_need_no_key(anonymous: Client, path: str) -> None:
    """Health and docs answer 200 without a key."""
    response = await anonymous.get(path)
    assert response.status_code == 200, response.text


async def test_root_is_protected(anonymous: Client, client: Client) -> None:
    """GET / needs a key and then names the service, its version and the docs."""
    assert (await anonymous.get("/")).status_code == 401
    body = (await client.get("/")).json()
    assert body["name"] == "Spark"
    assert body["docs_url"] == "/api/v1/docs"
    assert body["version"]
    assert body["server_time"].endswith("+00:00")


async def test_unknown_protected_path_asks_for_the_key_first(anonymous: Client) -> None:
    """Probing unknown /api/v1 paths or wrong methods without a key learns nothing: 401."""
    assert (await anonymous.get("/api/v1/nothing-here")).status_code == 401
    assert (await anonymous.put("/api/v1/tasks")).status_code == 401


async def test_wrong_key_on_a_post_is_401_before_body_validation(anonymous: Client) -> None:
    """The key is checked before the body is read."""
    response = await anonymous.post(
        "/api/v1/sources", content=b"{not json", headers={"X-API-Key": "bad"}
    )
    assert response.status_code == 401


def test_app_refuses_to_build_without_keys(tmp_path: object) -> None:
    """The server never runs open: no configured key, no app."""
    container = build_container(Settings(api_keys=(), data_dir=tmp_path))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="API key"):
        create_app(container)
