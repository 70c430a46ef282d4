"""The download recipes against a local HTTP server: layout, checksums, path traversal, reruns."""

import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile
from functools import partial

import numpy as np
import pytest
from conftest import run_command
from PIL import Image

from rootseg.sources.download import MARKER, RECIPES, SEGROOT_COMMIT, DownloadError, fetch, safe_extract, segroot_split
from rootseg.sources.folder import FolderSource
from rootseg.sources.prmi import PRMISource


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        _QuietHandler.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """(folder served, base URL) of a threaded HTTP server on 127.0.0.1 at a free port."""
    www = tmp_path / "www"
    www.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _QuietHandler.requests = []
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _jpeg(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


SEGROOT_NAMES = [f"Untitled_T00{i}_L002_20.03.17_11585{i}_001_Untitled" for i in range(5)]


def _segroot_zip(path, names=SEGROOT_NAMES) -> str:
    """The GitHub archive layout of wtwtwt0330/SegRoot: SegRoot-<sha>/data/data_raw/{x.jpg, x-mask.jpg}."""
    top = f"SegRoot-{SEGROOT_COMMIT}"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{top}/README.md", "SegRoot\n")
        zf.writestr(f"{top}/code/utils.py", "# not data\n")
        for i, name in enumerate(names):
            mask = np.zeros((24, 32), np.uint8)
            mask[:, 4 * i : 4 * i + 6] = 255
            zf.writestr(f"{top}/data/data_raw/{name}.jpg", _jpeg(np.full((24, 32, 3), 30 * i, np.uint8)))
            zf.writestr(f"{top}/data/data_raw/{name}-mask.jpg", _jpeg(np.stack([mask] * 3, axis=2)))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_segroot_recipe_lays_out_folder_source(server, tmp_path):
    www, base = server
    digest = _segroot_zip(www / "segroot.zip")
    dest = tmp_path / "data" / "segroot"
    settings = ["dataset=segroot", f"output={dest}", f"url={base}/segroot.zip", f"sha256={digest}"]
    assert run_command("download", settings, tmp_path / "run") == 0
    assert sorted(p.name for p in dest.iterdir()) == [MARKER, "images", "masks", "split.json"]  # archive removed
    split = json.loads((dest / "split.json").read_text())
    assert split == segroot_split(SEGROOT_NAMES) and [len(split[k]) for k in ("train", "val", "test")] == [3, 1, 1]
    source = FolderSource(dest, mask_suffix="-mask")
    splits = source.splits()
    assert sorted(s.name for v in splits.values() for s in v) == sorted(SEGROOT_NAMES)
    assert {s.name for s in splits["test"]} == set(split["test"])
    # a second run finds the marker and fetches nothing
    requests = len(_QuietHandler.requests)
    assert fetch("segroot", dest, url=f"{base}/segroot.zip", sha256=digest) == dest.resolve()
    assert len(_QuietHandler.requests) == requests


def test_wrong_sha256_raises_and_leaves_no_file(server, tmp_path):
    www, base = server
    _segroot_zip(www / "segroot.zip")
    dest = tmp_path / "segroot"
    with pytest.raises(DownloadError, match="SHA-256 mismatch: expected 0{64}, got [0-9a-f]{64}"):
        fetch("segroot", dest, url=f"{base}/segroot.zip", sha256="0" * 64)
    assert [p for p in dest.rglob("*") if p.is_file()] == []


def test_interrupted_run_reuses_the_verified_archive(server, tmp_path):
    www, base = server
    digest = _segroot_zip(www / "segroot.zip")
    dest = tmp_path / "segroot"
    (dest / "images").mkdir(parents=True)  # in the way: preparation fails after the download
    with pytest.raises(DownloadError, match="already exist"):
        fetch("segroot", dest, url=f"{base}/segroot.zip", sha256=digest)
    (dest / "images").rmdir()
    requests = len(_QuietHandler.requests)
    fetch("segroot", dest, url=f"{base}/segroot.zip", sha256=digest)
    assert len(_QuietHandler.requests) == requests and len(list((dest / "masks").iterdir())) == 5


def test_zip_with_path_traversal_is_refused(server, tmp_path):
    www, base = server
    with zipfile.ZipFile(www / "evil.zip", "w") as zf:
        zf.writestr("fine/image.jpg", b"x")
        zf.writestr("../evil.txt", b"gotcha")
    digest = hashlib.sha256((www / "evil.zip").read_bytes()).hexdigest()
    dest = tmp_path / "chicory"
    with pytest.raises(DownloadError, match="refusing to extract '../evil.txt'"):
        fetch("chicory", dest, url=f"{base}/evil.zip", sha256=digest)
    assert not (tmp_path / "evil.txt").exists() and not (dest / "fine").exists()
    assert not list(dest.glob(".extract-*"))


@pytest.mark.parametrize("name", ["/etc/evil", "a/../../evil", "C:/evil"])
def test_safe_extract_refuses_escaping_zip_members(tmp_path, name):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(name, b"x")
    with pytest.raises(DownloadError, match="refusing"):
        safe_extract(archive, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())


def test_safe_extract_refuses_tar_links(tmp_path):
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        link = tarfile.TarInfo("data/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    with pytest.raises(DownloadError, match="a link or device"):
        safe_extract(archive, tmp_path / "out")
    good = tmp_path / "b.tar"
    with tarfile.open(good, "w") as tf:
        info = tarfile.TarInfo("data/x.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"hi"))
    safe_extract(good, tmp_path / "out")
    assert (tmp_path / "out" / "data" / "x.txt").read_text() == "hi"


def test_unverified_recipes_need_a_checksum_or_no_verify(server, tmp_path):
    www, base = server
    with pytest.raises(DownloadError, match="sha256=HEX .*ce5059f9.*verify=false"):
        fetch("prmi", tmp_path / "prmi", url=f"{base}/PRMI_official.zip")
    assert _QuietHandler.requests == []
    # a PRMI-like archive taken without verification lands as PRMI_official/ and reads as PRMI
    with zipfile.ZipFile(www / "PRMI_official.zip", "w") as zf:
        for split in ("train", "val", "test"):
            stem = f"Cotton_T001_L00{len(split)}_2017.06.01_101010_ABC_DPI150"
            zf.writestr(
                f"PRMI_official/{split}/images/Cotton_736x552_DPI150/{stem}.jpg", _jpeg(np.zeros((8, 8, 3), np.uint8))
            )
            buffer = io.BytesIO()
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, format="PNG")
            zf.writestr(f"PRMI_official/{split}/masks_pixel_gt/Cotton_736x552_DPI150/GT_{stem}.png", buffer.getvalue())
    dest = fetch("prmi", tmp_path / "prmi", url=f"{base}/PRMI_official.zip", verify=False)
    assert (dest / "PRMI_official" / "train" / "images").is_dir()
    assert [len(v) for v in PRMISource(dest).splits().values()] == [1, 1, 1]


def test_http_error_names_the_url(server, tmp_path):
    _, base = server
    with pytest.raises(DownloadError, match=f"{base}/missing.zip: download failed"):
        fetch("chicory", tmp_path / "c", url=f"{base}/missing.zip", verify=False)
    assert not (tmp_path / "c" / ".download" / "towers_750_training.zip").exists()


def test_segroot_split_reproduces_the_shared_split(segroot):
    """SegRoot's 52 train+val names sit at known indices of the 65 sorted names; fill the 13 held-out test
    positions with stand-in names that sort into place, and the shuffle must give back train and val exactly."""
    import random

    shared = json.loads((segroot / "split.json").read_text())
    ids = list(range(65))
    random.Random(42).shuffle(ids)
    position = {name: ids[i] for i, name in enumerate(shared["train"] + shared["val"])}
    known = sorted(position, key=position.get)
    if known != sorted(known):
        pytest.skip("the shared names do not sit at SegRoot's indices in sorted order: not reconstructible")
    by_position = {p: n for n, p in position.items()}
    full: list[str] = []
    for p in range(65):
        full.append(by_position.get(p) or (full[-1] if full else "") + "~")  # sorts right after its left neighbour
    assert full == sorted(full) and len(set(full)) == 65
    split = segroot_split(full)
    assert split["train"] == shared["train"] and split["val"] == shared["val"]


@pytest.mark.parametrize("content", ['["segroot"]', "not json", '{"name": "segroot", "entries": "images"}'])
def test_a_marker_that_is_not_the_record_is_named(server, tmp_path, capsys, content):
    dest = tmp_path / "segroot"
    dest.mkdir()
    (dest / MARKER).write_text(content)
    settings = ["dataset=segroot", f"output={dest}", "url=http://127.0.0.1:9/x.zip", "verify=false"]
    assert run_command("download", settings, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert f"{dest / MARKER}: not the record rootseg.download writes" in err and "Traceback" not in err
    assert _QuietHandler.requests == []


def test_a_web_page_is_not_kept_as_the_archive_nor_reused(server, tmp_path):
    """A server answering with an HTML page (a login or consent page) instead of the archive: the page is removed
    with an error; a page an older version left in .download/ is fetched again, not reused forever."""
    www, base = server
    (www / "chicory.zip").write_text("<!DOCTYPE html><html><body>Please log in</body></html>")
    dest = tmp_path / "chicory"
    with pytest.raises(DownloadError, match=r"chicory\.zip: the server sent an HTML page, not a zip or tar archive"):
        fetch("chicory", dest, url=f"{base}/chicory.zip", verify=False)
    assert not (dest / ".download" / RECIPES["chicory"].filename).exists()
    (dest / ".download").mkdir(parents=True, exist_ok=True)
    (dest / ".download" / RECIPES["chicory"].filename).write_text("<html>an error page an older run kept</html>")
    with zipfile.ZipFile(www / "chicory.zip", "w") as zf:
        zf.writestr("Chicory/a.txt", b"data")
    requests = len(_QuietHandler.requests)
    fetch("chicory", dest, url=f"{base}/chicory.zip", verify=False)
    assert len(_QuietHandler.requests) == requests + 1 and (dest / "Chicory" / "a.txt").read_bytes() == b"data"
