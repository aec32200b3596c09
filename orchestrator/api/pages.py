"""The browser UI: three public HTML pages and their static files (``orchestrator/web``).

The pages hold no data: they ask for the API key in the browser and send it as ``X-API-Key``
with every API call, so serving them needs no key. ``/static/vendor/tus.min.js`` is
tus-js-client's prebuilt browser bundle, copied there by ``npm ci`` in ``orchestrator/web``
(scripts/install.sh; the api image's ``web`` build stage): nothing is fetched from a CDN.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Controller, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.response import File
from litestar.static_files import create_static_files_router

from orchestrator.api.auth import PUBLIC

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
STATIC_DIR = WEB_DIR / "static"
VENDOR_FILE = STATIC_DIR / "vendor" / "tus.min.js"
HTML = "text/html; charset=utf-8"
# Pages and scripts change with the code: let browsers revalidate instead of guessing.
NO_CACHE = CacheControlHeader(no_cache=True)


def _page(name: str) -> File:
    return File(WEB_DIR / name, media_type=HTML, content_disposition_type="inline")


class PageController(Controller):
    include_in_schema = False
    opt = {PUBLIC: True}
    cache_control = NO_CACHE

    @get("/", operation_id="page_new_task", sync_to_thread=False)
    def index(self) -> File:
        return _page("index.html")

    @get("/tasks.html", operation_id="page_tasks", sync_to_thread=False)
    def tasks(self) -> File:
        return _page("tasks.html")

    @get("/task.html", operation_id="page_task", sync_to_thread=False)
    def task(self) -> File:
        return _page("task.html")


def static_router() -> Router:
    """``/static/*`` from ``orchestrator/web/static`` (public, revalidated)."""
    return create_static_files_router(
        "/static",
        directories=[STATIC_DIR],
        opt={PUBLIC: True},
        cache_control=NO_CACHE,
        include_in_schema=False,
    )
