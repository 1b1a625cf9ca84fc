"""The review app: Starlette routes over a :class:`~ethoflow.review.store.ReviewStore`.

Every route needs the access token (query ``?token=``, header ``X-Ethoflow-Token`` or
``Authorization: token ...``, or the cookie the first visit sets); without it: 403. Requests
must name a local host (``Host`` header; against DNS rebinding). Sessions are named by their
sheet keys only, so no request names a path, except ``/files/...``: files under the run's
``results/``, refused (403) for absolute paths, ``..`` or links leading out of it.

Routes: ``/`` the page; ``/static/*`` its files; ``GET /api/sessions``; ``GET /api/queue``
(``order=margin|disagreement``, ``limit``); ``GET /api/session/{subject}/{session}``;
``GET .../window?mode=&start=&stop=``; ``GET|POST /api/review/{subject}/{session}`` (POST
``{"etag": ..., "ops": [...]}``: 200 with the new state, 409 with the current one when the
etag is stale, 400 for an operation that does not apply); ``/video/{subject}/{session}`` the
sheet's video with HTTP range requests (206); ``/files/{path}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .store import Conflict, OpError, ReviewStore

STATIC = Path(__file__).resolve().parent / "static"
LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1"]


def cookie_name(port: int | None) -> str:
    """One cookie per port: cookies are per host, and two servers may share localhost."""
    return f"ethoflow_review_{port or 0}"


class TokenMiddleware:
    """Refuse (403) every request that does not carry the token; a request that brings it in
    the query string gets it back as an HttpOnly, SameSite=Strict cookie."""

    def __init__(self, app, token: str, cookie: str):
        self.app = app
        self.token = token
        self.cookie = cookie

    def _ok(self, value: str | None) -> bool:
        return bool(value) and secrets.compare_digest(value.encode(), self.token.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])[0]
        auth = request.headers.get("authorization", "")
        header = request.headers.get("x-ethoflow-token") or (
            auth[6:].strip() if auth.lower().startswith("token ") else None
        )
        if not (self._ok(query) or self._ok(header) or self._ok(request.cookies.get(self.cookie))):
            response = PlainTextResponse(
                "403: this review server needs its access token: open the URL it printed at "
                "start (http://127.0.0.1:PORT/?token=...)",
                status_code=403,
            )
            return await response(scope, receive, send)
        if not self._ok(query):
            return await self.app(scope, receive, send)
        cookie = f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"set-cookie", cookie.encode())]
            await send(message)

        return await self.app(scope, receive, send_with_cookie)


def create_app(
    store: ReviewStore,
    token: str,
    *,
    port: int | None = None,
    allowed_hosts: list[str] | None = None,
    index_in_background: bool = True,
) -> Starlette:
    """The app; ``allowed_hosts`` (Host header) defaults to the local names only."""

    def key_of(request: Request) -> str:
        key = f"{request.path_params['subject']}/{request.path_params['session']}"
        if key not in store.sessions:
            raise KeyError(key)
        return key

    async def run(fn, *args):
        return await asyncio.to_thread(fn, *args)

    async def page(request: Request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def sessions(request: Request):
        return JSONResponse(await run(store.session_list))

    async def queue(request: Request):
        order = request.query_params.get("order", "margin")
        try:
            limit = int(request.query_params.get("limit", 200))
            return JSONResponse(await run(store.queue, order, limit))
        except ValueError as err:
            return JSONResponse({"error": str(err)}, status_code=400)

    async def session(request: Request):
        try:
            return JSONResponse(await run(store.detail, key_of(request)))
        except KeyError:
            return JSONResponse({"error": "no such session"}, status_code=404)

    async def window(request: Request):
        q = request.query_params
        try:
            key = key_of(request)
            out = await run(store.window, key, q.get("mode", ""), int(q["start"]), int(q["stop"]))
        except KeyError:
            return JSONResponse({"error": "no such session or mode"}, status_code=404)
        except ValueError:
            return JSONResponse({"error": "start and stop must be frames"}, status_code=400)
        return JSONResponse(out)

    async def review(request: Request):
        try:
            key = key_of(request)
        except KeyError:
            return JSONResponse({"error": "no such session"}, status_code=404)
        if request.method == "GET":
            return JSONResponse(await run(store.state, key))
        if not request.headers.get("content-type", "").startswith("application/json"):
            return JSONResponse({"error": "send JSON"}, status_code=415)
        try:
            body = await request.json()
            etag, ops = str(body["etag"]), list(body["ops"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "body must be {etag, ops: [...]}"}, status_code=400)
        try:
            return JSONResponse(await run(store.save, key, etag, ops))
        except Conflict as c:
            return JSONResponse(
                {"error": "conflict", "etag": c.etag, "bouts": c.bouts}, status_code=409
            )
        except OpError as err:
            return JSONResponse({"error": str(err)}, status_code=400)

    async def video(request: Request):
        try:
            path = store.video_path(key_of(request))
        except KeyError:
            path = None
        if path is None:
            return PlainTextResponse("no video for this session", status_code=404)
        return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})

    async def files(request: Request):
        rel = request.path_params["path"]
        try:
            path = store.results_file(rel)
        except PermissionError:
            return PlainTextResponse("403: outside the run's results/", status_code=403)
        except FileNotFoundError:
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(path)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if index_in_background:
            threading.Thread(target=store.build_index, daemon=True, name="index").start()
        yield

    routes = [
        Route("/", page),
        Route("/api/sessions", sessions),
        Route("/api/queue", queue),
        Route("/api/session/{subject}/{session}", session),
        Route("/api/session/{subject}/{session}/window", window),
        Route("/api/review/{subject}/{session}", review, methods=["GET", "POST"]),
        Route("/video/{subject}/{session}", video),
        Route("/files/{path:path}", files),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    hosts = allowed_hosts if allowed_hosts is not None else LOCAL_HOSTS
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=hosts),
        Middleware(TokenMiddleware, token=token, cookie=cookie_name(port)),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def serve(store: ReviewStore, host: str = "127.0.0.1", port: int = 8765, token: str = "") -> None:
    """Run the app with uvicorn until interrupted; prints the URL with the token."""
    import uvicorn

    token = token or secrets.token_urlsafe(24)
    hosts = ["*"] if host in ("0.0.0.0", "::") else sorted({*LOCAL_HOSTS, host})
    app = create_app(store, token, port=port, allowed_hosts=hosts)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(
        f"ethoflow review: {len(store.sessions)} sessions of {store.workdir}\n"
        f"  open http://{shown}:{port}/?token={token}\n"
        f"  over SSH: ssh -L {port}:localhost:{port} <you>@<login node>, then the same URL",
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
