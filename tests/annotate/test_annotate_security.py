"""rootseg.annotate's security and reliability: only the project's files, tokens, hosts, concurrent saves, SIGKILL."""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from annotate_fixtures import REPO, SIZES, WRITE, annotation, client_for, png, project_fixture, start_server  # noqa: F401
from conftest import child_env
from PIL import Image

from rootseg.io.masks import read_mask
from rootseg.sources.rootpainter import RootPainterSource

H, W = SIZES["b"]
SECRET = "TOPSECRET-do-not-serve"


@pytest.fixture
def outside(project) -> Path:
    """A folder beside the sync folder, holding a secret text and a valid image, neither in the project."""
    folder = project.parents[2] / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text(SECRET)
    Image.fromarray(np.full((H, W, 3), 7, np.uint8)).save(folder / "image.png")
    Image.fromarray(annotation(80, 90)).save(folder / "annotation.png")
    return folder


@contextlib.contextmanager
def live_server(app):
    """The app under a real uvicorn in a thread (real sockets: raw paths, concurrent connections)."""
    import uvicorn

    from rootseg.annotate.server import bind

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def raw(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """One request with the path sent byte for byte (no client-side normalisation of '..' or %2e)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", f"127.0.0.1:{port}")
    for key, value in {**(headers or {}), "Content-Length": str(len(body or b""))}.items():
        conn.putheader(key, value)
    conn.endheaders(body)
    response = conn.getresponse()
    result = response.status, response.read()
    conn.close()
    return result


TRAVERSALS = [
    "/static/../app.py",
    "/static/..%2fapp.py",
    "/static/%2e%2e/app.py",
    "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2foutside/secret.txt",
    "/static//etc/passwd",
    "/static/%2Fetc%2Fpasswd",
    "/../../../outside/secret.txt",
    "/api/images/..%2F..%2F..%2F..%2Foutside%2Fsecret/image",
    "/api/images/..%252F..%252Foutside%252Fsecret/image",
    "/api/images/%2e%2e/image",
    "/api/images/%2Fetc%2Fpasswd/image",
    "/api/images/..%2F..%2F..%2F..%2Foutside%2Fimage/image",
    "/api/images/b%2F..%2F..%2Fsecret/annotation",
]


def test_path_traversal_is_refused_on_a_real_socket(compose, project, outside):
    _, app = client_for(compose, project)
    with live_server(app) as port:
        assert raw(port, "GET", "/static/app.js")[0] == 200  # the page's own files are served
        for path in TRAVERSALS:
            status, body = raw(port, "GET", path)
            assert status in (400, 403, 404), (path, status)
            assert SECRET.encode() not in body and b"def create_app" not in body and b"root:" not in body, path
        status, _ = raw(port, "PUT", "/api/images/..%2F..%2Foutside%2Fx/annotation", png(annotation(H, W)), WRITE)
        assert status == 404
    assert sorted(p.name for p in outside.iterdir()) == ["annotation.png", "image.png", "secret.txt"]


def test_symlinks_out_of_the_project_are_refused(compose, project, outside):
    dataset = project.parents[1] / "datasets" / "scans"
    (dataset / "evil.png").symlink_to(outside / "image.png")
    client, _ = client_for(compose, project)
    assert "evil" not in [item["id"] for item in client.get("/api/queue").json()["images"]]
    assert client.get("/api/images/evil/image").status_code == 404
    # an image swapped for a link after start-up
    (dataset / "b.png").unlink()
    (dataset / "b.png").symlink_to(outside / "image.png")
    response = client.get("/api/images/b/image")
    assert response.status_code == 403 and "outside the project" in response.json()["error"]
    # an annotation that links out is not read
    (project / "annotations" / "train").mkdir()
    (project / "annotations" / "train" / "c.png").symlink_to(outside / "annotation.png")
    assert client.get("/api/images/c/annotation").status_code == 403
    # nor is an annotation folder that links out written into
    (project / "annotations" / "val").symlink_to(outside, target_is_directory=True)
    response = client.put("/api/images/c/annotation?split=val", content=png(annotation(80, 90)), headers=WRITE)
    assert response.status_code == 403 and "links outside the project" in response.json()["error"]
    assert sorted(p.name for p in outside.iterdir()) == ["annotation.png", "image.png", "secret.txt"]


def test_a_token_is_required_when_set(compose, project):
    token = "s3cret-token-0123456789"
    client, _ = client_for(compose, project, f"token={token}")
    assert client.get("/api/queue").status_code == 401
    assert client.get("/").status_code == 401
    assert client.get("/api/queue", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
    assert client.get("/api/queue", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/api/queue", headers={"X-Rootseg-Token": token}).status_code == 200
    page = client.get(f"/?token={token}")
    assert page.status_code == 200 and "rootseg_token" in page.headers["set-cookie"]
    assert "httponly" in page.headers["set-cookie"].lower() and "samesite=strict" in page.headers["set-cookie"].lower()
    assert client.get("/api/queue").status_code == 200  # the page's later requests carry the cookie
    body = png(annotation(H, W))
    assert client.put("/api/images/b/annotation", content=body, headers=WRITE).status_code == 200


def test_other_addresses_get_a_token_and_loopback_checks_the_host(compose, project):
    from rootseg.annotate.server import build, resolve_token

    assert resolve_token("127.0.0.1", None) is None and resolve_token("::1", None) is None
    generated = resolve_token("0.0.0.0", None)
    assert generated and len(generated) >= 24 and generated != resolve_token("0.0.0.0", None)
    with pytest.raises(ValueError, match="at least 16 characters"):
        resolve_token("0.0.0.0", "short")
    app, _, token = build(compose("annotate", [f"project='{project}'", "host=0.0.0.0"]))
    from starlette.testclient import TestClient

    client = TestClient(app, base_url="http://192.168.1.20:8642")
    assert token and client.get("/api/queue").status_code == 401
    assert client.get("/api/queue", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # bound to loopback: a page that reaches it under another name (DNS rebinding) is refused
    client, _ = client_for(compose, project)
    response = client.get("/api/queue", headers={"Host": "evil.example:8642"})
    assert response.status_code == 400 and "unexpected Host" in response.json()["error"]
    assert client.get("/api/queue", headers={"Host": "localhost:8642"}).status_code == 200


@pytest.mark.parametrize("host", ["[::1", "127.0.0.1]:8642", "[zz]:1", "[", "x@["])
def test_a_malformed_host_header_is_answered_400_not_500(compose, project, host, caplog):
    """urlsplit raised on these (issue 26: 500 and a traceback in the log): a clean 400 naming the header."""
    client, _ = client_for(compose, project)
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/queue", headers={"Host": host})
    assert response.status_code == 400 and "malformed Host header" in response.json()["error"]
    # bound off loopback any Host is accepted (the token guards it): the same header must not break a page
    client, _ = client_for(compose, project, "host=0.0.0.0", "token=0123456789abcdefXYZ")
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/queue", headers={"Host": host, "Authorization": "Bearer 0123456789abcdefXYZ"})
    assert response.status_code == 200
    assert "Traceback" not in caplog.text


def test_changes_need_the_apps_own_header(compose, project):
    """A page of another site can send a simple cross-origin POST/PUT, but not this header without a preflight."""
    client, _ = client_for(compose, project)
    response = client.put("/api/images/b/annotation", content=png(annotation(H, W)))
    assert response.status_code == 403 and "X-Rootseg-Client" in response.json()["error"].title()
    assert client.post("/api/finetune").status_code == 403
    assert not (project / "annotations" / "train").exists()


def test_two_tabs_saving_at_once_leave_one_whole_save(compose, project):
    """Concurrent saves of two different annotations to different splits, with a reader watching the files."""
    first, second = annotation(H, W), annotation(H, W, root_rows=(50, 90), bg_rows=(0, 5))
    uploads = {"train": png(first), "val": png(second)}
    _, app = client_for(compose, project)
    torn: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            for split in ("train", "val"):
                try:
                    seen = np.array(Image.open(project / "annotations" / split / "b.png"))
                except FileNotFoundError:
                    continue
                except Exception as error:  # a half-written file does not decode
                    torn.append(f"{split}: {error}")
                    continue
                if not (np.array_equal(seen, first) or np.array_equal(seen, second)):
                    torn.append(split)

    def writer(port: int, split: str, statuses: list[int]) -> None:
        for _ in range(12):
            statuses.append(raw(port, "PUT", f"/api/images/b/annotation?split={split}", uploads[split], WRITE)[0])

    with live_server(app) as port:
        statuses: list[int] = []
        threads = [threading.Thread(target=writer, args=(port, s, statuses)) for s in ("train", "val", "train", "val")]
        watcher = threading.Thread(target=reader)
        watcher.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        watcher.join()
        assert statuses == [200] * 48
        assert torn == []
        kept = [s for s in ("train", "val") if (project / "annotations" / s / "b.png").exists()]
        assert len(kept) == 1  # never in both splits
        final = np.array(Image.open(project / "annotations" / kept[0] / "b.png"))
        assert np.array_equal(final, first if kept[0] == "train" else second)
        # sequential saves: the last one wins
        raw(port, "PUT", "/api/images/b/annotation?split=val", uploads["val"], WRITE)
        raw(port, "PUT", "/api/images/b/annotation?split=train", uploads["train"], WRITE)
    assert np.array_equal(np.array(Image.open(project / "annotations" / "train" / "b.png")), first)
    assert not (project / "annotations" / "val" / "b.png").exists()
    assert [p.name for p in (project / "annotations").rglob(".*")] == []


def test_sigkill_loses_no_saved_annotation(project):
    """Save through the real command, SIGKILL the server at once, read the file with rootseg's reader."""
    process, url = start_server(project)
    try:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        rgba = annotation(H, W)
        status, body = raw(port, "PUT", "/api/images/b/annotation?split=val", png(rgba), WRITE)
        assert status == 200, body
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        process.kill()
    labels = read_mask(project / "annotations" / "val" / "b.png")
    assert (labels[10:20] == 1).all() and (labels[30:40] == 0).all() and (labels[40:] == 255).all()
    assert [s.name for s in RootPainterSource(project).splits()["val"]] == ["b"]


def test_command_off_loopback_prints_a_token_url(project):
    """Bound to every address, the real command prints a URL with a fresh token, and requests need it."""
    process, url = start_server(project, "host=0.0.0.0")
    try:
        assert url.startswith("http://0.0.0.0:") and "/?token=" in url
        port, token = int(url.split(":")[2].split("/")[0]), url.split("token=")[1]
        assert len(token) >= 24
        assert raw(port, "GET", "/api/queue")[0] == 401
        assert raw(port, "GET", "/api/queue", headers={"Authorization": f"Bearer {token}"})[0] == 200
        assert raw(port, "GET", f"/?token={token}")[0] == 200
    finally:
        process.kill()
        process.wait(10)


def test_command_errors_are_one_paragraph(tmp_path):
    env = child_env()
    argv = [sys.executable, "-m", "rootseg.annotate", f"project={tmp_path / 'nowhere'}", f"hydra.run.dir={tmp_path}"]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.startswith("error: ")
    assert "nowhere" in result.stderr


def test_saved_file_is_flushed_before_the_reply(project, compose, monkeypatch):
    """The annotation's bytes reach the disk (fsync of the written file, then of its folder) before the reply."""
    import stat

    synced: list[tuple[str, int]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        synced.append(("file" if stat.S_ISREG(info.st_mode) else "folder", info.st_size))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    client, _ = client_for(compose, project)
    body = png(annotation(H, W))
    assert client.put("/api/images/b/annotation", content=body, headers=WRITE).status_code == 200
    saved = project / "annotations" / "train" / "b.png"
    assert synced[0] == ("file", saved.stat().st_size) and synced[-1][0] == "folder"
