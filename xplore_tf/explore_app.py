"""The explore page's HTTP side: a FastAPI app over an `explore_lib.Explorer`.

FastAPI (on Starlette, served by uvicorn) carries routing, uploads, JSON and errors; the page
is static HTML + JavaScript (`explore_page/`), no build step. Every error a user can cause is
an HTTP 400/413 whose JSON `detail` is one line the page shows; the server keeps running.

    GET  /                              the page
    GET  /api/info                      k, the model's source, full resolution or not
    GET  /api/clusters                  [{id, size, name}]
    GET  /api/clusters/{id}/sheet       the contact sheet (JPEG)
    GET  /api/clusters/{id}/where       where it edits: a heat map (PNG)
    PUT  /api/clusters/{id}/name        {"name": "..."} -> saved to cluster_names.json
    GET  /api/run_images                {"count": N}; /api/run_images/{i} a thumbnail (JPEG)
    POST /api/photos                    multipart `file` -> {id, width, height, faces}
    POST /api/photos/run/{i}            the run's image i as a photo
    GET  /api/photos/{id}               the photo (JPEG; ?face=-1: what a whole-image edit shows)
    POST /api/groups                    multipart `files` -> a reference group
    POST /api/edit                      {photo, face, clusters | group [, shared], format}
                                        -> the edit (shared: strength of what the group shares)
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import Body, FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from xplore_tf import explore_lib
from xplore_tf.common import pixels as common
from xplore_tf.explore_lib import ExploreError, Explorer


def make_app(explorer: Explorer, *, max_upload_bytes: int) -> FastAPI:
    """The page and its API; uploads over `max_upload_bytes` are refused (HTTP 413)."""
    app = FastAPI(title="xplore_tf explore", docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=explore_lib.PAGE_DIR), name="static")
    app.add_exception_handler(ExploreError, _bad_input)
    app.add_exception_handler(ValueError, _refused)
    routes = _Routes(explorer, max_upload_bytes)
    app.get("/")(routes.page)
    app.get("/api/info")(routes.info)
    app.get("/api/clusters")(routes.clusters)
    app.get("/api/clusters/{cluster}/sheet")(routes.sheet)
    app.get("/api/clusters/{cluster}/where")(routes.where)
    app.put("/api/clusters/{cluster}/name")(routes.rename)
    app.get("/api/run_images")(routes.run_images)
    app.get("/api/run_images/{index}")(routes.run_image)
    app.post("/api/photos")(routes.upload)
    app.post("/api/photos/run/{index}")(routes.from_run)
    app.get("/api/photos/{photo_id}")(routes.photo)
    app.post("/api/groups")(routes.group)
    app.post("/api/edit")(routes.edit)
    return app


async def _bad_input(request: Request, error: ExploreError):
    return JSONResponse({"detail": str(error)}, status_code=400)


async def _refused(request: Request, error: ValueError):  # strengths, names, the model's
    return JSONResponse({"detail": " ".join(str(error).split())}, status_code=400)


class _Routes:
    """The route handlers of `make_app` (see the module doc), over one `Explorer`."""

    def __init__(self, explorer: Explorer, max_upload_bytes: int):
        self.explorer = explorer
        self.max_upload_bytes = max_upload_bytes

    async def read_upload(self, upload: UploadFile) -> bytes:
        """The uploaded file's bytes; HTTP 413 when over `max_upload_bytes`."""
        data = await upload.read(self.max_upload_bytes + 1)
        if len(data) > self.max_upload_bytes:
            raise HTTPException(
                413,
                f"{upload.filename}: larger than the {self.max_upload_bytes >> 20} MB the page "
                "takes",
            )
        return data

    def page(self):
        return FileResponse(os.path.join(explore_lib.PAGE_DIR, "index.html"))

    def info(self):
        return explore_lib.page_info(self.explorer)

    def clusters(self):
        return self.explorer.clusters()

    def sheet(self, cluster: int):
        return FileResponse(self.explorer.sheet_path(cluster), media_type="image/jpeg")

    def where(self, cluster: int):
        return Response(self.explorer.where_it_edits(cluster), media_type="image/png")

    def rename(self, cluster: int, body: Annotated[dict, Body()]):
        names = self.explorer.rename(cluster, str(body.get("name", "")))
        return {str(c): n for c, n in names.items()}

    def run_images(self):
        return {"count": len(self.explorer.run_images())}

    def run_image(self, index: int):
        data = self.explorer.run_image_bytes(index)
        if data is None:
            raise ExploreError(f"the run has no readable image {index}")
        return Response(explore_lib.jpeg(common.decode(data)), media_type="image/jpeg")

    async def upload(self, file: Annotated[UploadFile, File()]):
        return self.explorer.add_photo(await self.read_upload(file), file.filename or "photo")

    def from_run(self, index: int):
        return self.explorer.add_run_image(index)

    def photo(self, photo_id: str, face: int = 0):
        """The photo, or with face=-1 the square of it a whole-image edit returns."""
        rgb = self.explorer.before(photo_id, face)
        return Response(explore_lib.jpeg(rgb), media_type="image/jpeg")

    async def group(self, files: Annotated[list[UploadFile], File()]):
        read = [(f.filename or "photo", await self.read_upload(f)) for f in files]
        return self.explorer.add_group(read)

    def edit(self, body: Annotated[dict, Body()]):
        photo_id = str(body.get("photo", ""))
        target = self.explorer.target(
            body.get("clusters") or {}, str(body.get("group") or ""), body.get("shared")
        )
        try:
            face = int(body.get("face", 0))
        except (TypeError, ValueError):
            raise ExploreError(f"face must be a number, got {body.get('face')!r}") from None
        rgb = self.explorer.edit(photo_id, face, target)
        if body.get("format") == "png":
            name = explore_lib.download_name(self.explorer.photo(photo_id), target)
            return Response(
                common.png_bytes(rgb),
                media_type="image/png",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return Response(explore_lib.jpeg(rgb), media_type="image/jpeg")


def serve(app: FastAPI, *, host: str, port: int, ready=None) -> None:
    """Runs the page until Ctrl-C; prints its address once it listens (`ready(url)` too)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    original = server.startup

    async def startup(sockets=None):
        await original(sockets)
        bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
        url = f"http://{host}:{bound}/"
        print(f"xplore_tf.explore: open {url} (Ctrl-C stops it)", flush=True)
        if ready is not None:
            ready(url, server)

    server.startup = startup
    server.run()
