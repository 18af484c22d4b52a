"""The docs page works offline: Swagger UI's files come from Spark, not a CDN, and are public."""

import re

import httpx

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)""")


async def test_the_docs_page_loads_only_spark_s_own_files_without_a_key(
    anonymous: httpx.AsyncClient,
) -> None:
    """Every script, style and icon the docs page references is a same-origin path under
    /api/v1/docs/static that answers 200 without a key; the document's server is /."""
    page = await anonymous.get("/api/v1/docs")
    assert page.status_code == 200
    assets = ASSET.findall(page.text)
    assert len(assets) >= 3
    for url in assets:
        assert url.startswith("/api/v1/docs/static/"), url
        answer = await anonymous.get(url)
        assert answer.status_code == 200, url
        assert answer.content
    document = (await anonymous.get("/api/v1/openapi.json")).json()
    assert document["servers"] == [{"url": "/"}]
