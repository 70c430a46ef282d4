"""The web app: a Starlette application serving the page, the project's images and a small JSON/PNG API.

Every request passes `Guard` first: the Host header must name the loopback address the server is bound to
(so a web page cannot reach it through DNS rebinding), the token must match when one is set (header, cookie
or `?token=` on the first page load), and a request that changes anything must carry the header
`X-Rootseg-Client: 1`, which a page of another site cannot send without a CORS preflight this app never
grants. Uploads are read up to `max_upload_bytes` and refused beyond it.
"""

from __future__ import annotations

import hmac
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from rootseg.annotate.finetune import FineTuner
from rootseg.annotate.project import Project, RequestError, TooLarge
from rootseg.annotate.service import ModelService

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
TOKEN_COOKIE = "rootseg_token"
CLIENT_HEADER = "x-rootseg-client"
SAFE_METHODS = ("GET", "HEAD")
NO_STORE = {"Cache-Control": "no-store"}


class Guard:
    """ASGI middleware: Host check, token check, and the client header on requests that change things."""

    def __init__(self, app: Any, token: str | None, allowed_hosts: set[str] | None) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self.check(Request(scope))
            if problem is not None:
                status, message = problem
                await JSONResponse({"error": message}, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def check(self, request: Request) -> tuple[int, str] | None:
        if self.allowed_hosts is not None:
            header = request.headers.get("host", "")
            try:
                host = urlsplit("//" + header).hostname or ""
            except ValueError:  # an unbalanced "[" or a bracketed name that is no IPv6 address
                return 400, f"malformed Host header {header[:100]!r}: open the app at the address it printed"
            if host not in self.allowed_hosts:
                return 400, f"unexpected Host {host!r}: open the app at the address it printed"
        if self.token is not None:
            auth = request.headers.get("authorization", "")
            supplied = (
                (auth[7:] if auth.lower().startswith("bearer ") else "")
                or request.headers.get("x-rootseg-token", "")
                or request.cookies.get(TOKEN_COOKIE, "")
                or request.query_params.get("token", "")
            )
            if not hmac.compare_digest(supplied.encode(), self.token.encode()):
                return 401, "a valid token is required: open the URL the server printed (it ends in ?token=...)"
        if request.method not in SAFE_METHODS and request.headers.get(CLIENT_HEADER) != "1":
            return 403, f"requests that change files must carry the header {CLIENT_HEADER}: 1 (the app's page sends it)"
        return None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds `limit` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError(f"Content-Length must be a number of bytes, got {declared!r}")
        if int(declared) > limit:
            raise TooLarge(f"the upload is {int(declared)} bytes; the limit is {limit} bytes (max_upload_mb)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the upload exceeds the limit of {limit} bytes (max_upload_mb)")
        chunks.append(chunk)
    return b"".join(chunks)


def _image_id(request: Request) -> str:
    return str(request.path_params["image_id"])


def _state(request: Request) -> Any:
    return request.app.state


async def index(request: Request) -> Response:
    response = FileResponse(STATIC_DIR / "index.html", headers=NO_STORE)
    token = _state(request).token
    if token is not None and request.query_params.get("token"):  # Guard has checked it
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
    return response


async def config(request: Request) -> Response:
    service: ModelService = _state(request).service
    model = service.model
    return JSONResponse(
        {
            "project": str(_state(request).project.location.project_file.name),
            "model": None if model is None else {"kind": model.kind, "path": model.path.name},
            "clicks": bool(model and model.takes_clicks),
            "finetune": _state(request).tuner is not None,
            "threshold": service.threshold,
            "max_upload_bytes": _state(request).max_upload_bytes,
        },
        headers=NO_STORE,
    )


async def queue(request: Request) -> Response:
    return JSONResponse(await run_in_threadpool(_state(request).service.queue), headers=NO_STORE)


async def image(request: Request) -> Response:
    project: Project = _state(request).project
    content, media_type = await run_in_threadpool(project.display_image, _image_id(request))
    if isinstance(content, Path):
        return FileResponse(content, media_type=media_type)
    return Response(content, media_type=media_type)


async def segmentation(request: Request) -> Response:
    data = await run_in_threadpool(_state(request).service.segmentation_png, _image_id(request))
    return Response(data, media_type="image/png", headers=NO_STORE)


async def get_annotation(request: Request) -> Response:
    project: Project = _state(request).project
    found = await run_in_threadpool(project.find_annotation, _image_id(request))
    if found is None:
        return JSONResponse({"error": "not annotated yet"}, status_code=404, headers=NO_STORE)
    split, path = found
    return Response(path.read_bytes(), media_type="image/png", headers={**NO_STORE, "X-Split": split})


async def put_annotation(request: Request) -> Response:
    state = _state(request)
    data = await read_body(request, state.max_upload_bytes)
    split = request.query_params.get("split", "train")
    path = await run_in_threadpool(state.project.save_annotation, _image_id(request), split, data)
    return JSONResponse({"saved": f"annotations/{split}/{path.name}", "split": split})


async def clicks(request: Request) -> Response:
    state = _state(request)
    body = await read_body(request, 1 << 20)
    try:
        points = json.loads(body)["points"]
    except (ValueError, KeyError, TypeError) as error:
        raise RequestError('send JSON {"points": [[x, y, label], ...]} with label 1 = root, 0 = not root') from error
    data = await run_in_threadpool(state.service.click_png, _image_id(request), points)
    return Response(data, media_type="image/png", headers=NO_STORE)


async def finetune(request: Request) -> Response:
    tuner: FineTuner | None = _state(request).tuner
    if tuner is None:
        raise RequestError("fine-tuning is off in this app")
    if request.method == "POST":
        await read_body(request, 1 << 16)
        return JSONResponse(await run_in_threadpool(tuner.start), status_code=202)
    if request.method == "DELETE":
        return JSONResponse(tuner.stop())
    return JSONResponse(tuner.status(), headers=NO_STORE)


async def request_error(request: Request, error: Exception) -> Response:
    status = getattr(error, "status", 400)
    if status >= 500 or not isinstance(error, RequestError):
        log.warning("%s %s: %s", request.method, request.url.path, error)
    return JSONResponse({"error": str(error)}, status_code=status)


def create_app(
    project: Project,
    service: ModelService,
    tuner: FineTuner | None = None,
    *,
    token: str | None = None,
    allowed_hosts: set[str] | None = None,
    max_upload_bytes: int = 64 << 20,
) -> Starlette:
    """The ASGI app; `allowed_hosts=None` accepts any Host header (only sensible with a token)."""
    routes = [
        Route("/", index),
        Route("/api/config", config),
        Route("/api/queue", queue),
        Route("/api/images/{image_id}/image", image),
        Route("/api/images/{image_id}/segmentation", segmentation),
        Route("/api/images/{image_id}/annotation", get_annotation, methods=["GET"]),
        Route("/api/images/{image_id}/annotation", put_annotation, methods=["PUT"]),
        Route("/api/images/{image_id}/clicks", clicks, methods=["POST"]),
        Route("/api/finetune", finetune, methods=["GET", "POST", "DELETE"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={ValueError: request_error})
    app.state.project, app.state.service, app.state.tuner = project, service, tuner
    app.state.token, app.state.max_upload_bytes = token, int(max_upload_bytes)
    app.add_middleware(Guard, token=token, allowed_hosts=allowed_hosts)
    return app
