"""The ASGI entry for servers such as uvicorn: ``uvicorn spark_http.asgi:app``.

The only module-level app in Spark; settings come from `.env` and the environment.
"""

from spark_adapters.container import build_container
from spark_adapters.settings import load_settings
from spark_http.app import create_app

app = create_app(build_container(load_settings()))
