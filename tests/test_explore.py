"""`xplore_tf.explore`: the page's API on a tiny run, and the page itself in headless Chromium.

The browser test needs Debian's chromium and chromium-driver (`apt-get install chromium
chromium-driver`) and selenium (the [test] extra); it skips, saying which is missing,
without them. Set XPLORE_SCREENSHOTS=DIR to keep its two screenshots.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from tests_support import copy_of_tiny_run, tiny_export

from tools import explore_screenshots as browser
from xplore_tf.common import pixels as common

pytestmark = pytest.mark.slow  # trains, exports, serves or converts a model

pytest.importorskip("fastapi", reason="the explore page needs the [explore] extra")
pytest.importorskip("multipart", reason="the explore page needs the [explore] extra")


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    from xplore_tf import explore_lib

    config = copy_of_tiny_run(tmp_path_factory, tmp_path_factory.mktemp("explore_run"))
    return explore_lib.Explorer(config, explore_lib.make_backend(config), heatmap_images=4)


@pytest.fixture(scope="module")
def client(explorer):
    from fastapi.testclient import TestClient

    from xplore_tf import explore_app

    return TestClient(explore_app.make_app(explorer, max_upload_bytes=2 << 20))


@pytest.fixture(scope="module")
def face_photo(tmp_path_factory):
    data = pytest.importorskip("skimage.data")
    path = tmp_path_factory.mktemp("photos") / "astronaut.jpg"
    from PIL import Image

    Image.fromarray(data.astronaut()[::2, ::2]).save(path, quality=95)
    return str(path)


def test_cards_names_and_where_it_edits(client, explorer):
    info = client.get("/api/info").json()
    assert info["clusters"] == 4 and info["full_resolution"] is True
    clusters = client.get("/api/clusters").json()
    assert [c["id"] for c in clusters] == [0, 1, 2, 3]
    assert clusters[0]["name"] == "alpha" and clusters[2]["name"] == "Beta"
    sheet = client.get("/api/clusters/1/sheet")
    assert sheet.status_code == 200 and sheet.headers["content-type"] == "image/jpeg"
    where = client.get("/api/clusters/1/where")
    assert common.decode(where.content).shape == (128, 128, 3)
    assert client.put("/api/clusters/1/name", json={"name": "smile"}).status_code == 200
    with open(explorer.names_path) as f:
        assert json.load(f) == {"0": "alpha", "1": "smile", "2": "Beta"}
    for name, message in (
        ("7", "is a number"),
        ("a:b", "holds ':' or ','"),
        ("alpha", "cluster 0's"),
    ):
        answer = client.put("/api/clusters/3/name", json={"name": name})
        assert answer.status_code == 400 and message in answer.json()["detail"]
    assert client.get("/api/clusters/9/where").json()["detail"].startswith("cluster 9 does not")


def test_edits_and_bad_input_are_clear_and_change_nothing(client, explorer, tmp_path):
    run = client.post("/api/photos/run/0").json()
    assert run["faces"] == []
    body = {"photo": run["id"], "face": -1, "clusters": {"1": 1.0}}
    one = client.post("/api/edit", json=body)
    half = client.post("/api/edit", json={**body, "clusters": {"1": 0.5}})
    assert one.status_code == half.status_code == 200 and one.content != half.content
    png = client.post("/api/edit", json={**body, "format": "png"})
    assert png.headers["content-disposition"].endswith('_c001.png"')
    side = common.decode(png.content).shape
    assert side[0] == side[1] == min(common.decode(explorer.run_image_bytes(0)).shape[:2])
    names_before = open(explorer.names_path).read()
    for request, message in (
        ({**body, "clusters": {"1": 5}}, "expected a number in [0, 2]"),
        ({**body, "clusters": {"1": 1.5, "2": 1.0}}, "sum to 2.5"),
        ({**body, "clusters": {"9": 1}}, "cluster 9 does not exist"),
        ({**body, "clusters": {}}, "choose a cluster"),
        ({**body, "photo": "nope"}, "no longer here"),
        ({**body, "face": 3}, "has no face 3"),
    ):
        answer = client.post("/api/edit", json=request)
        assert answer.status_code == 400 and message in answer.json()["detail"], answer.text
    text = client.post("/api/photos", files={"file": ("notes.txt", b"not an image")})
    assert text.status_code == 400 and "not a PNG, JPEG" in text.json()["detail"]
    empty = client.post("/api/photos", files={"file": ("empty.jpg", b"")})
    assert empty.json()["detail"] == "empty.jpg: the file is empty"
    big = client.post("/api/photos", files={"file": ("big.bmp", b"x" * (3 << 20))})
    assert big.status_code == 413 and "larger than the 2 MB" in big.json()["detail"]
    buf = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (8000, 6500)).save(buf, format="PNG")  # 52 MP, a small file
    huge = client.post("/api/photos", files={"file": ("wide.png", buf.getvalue())})
    assert "52 MP; the page takes photos up to 24 MP" in huge.json()["detail"]
    assert open(explorer.names_path).read() == names_before
    assert not [n for n in os.listdir(explorer.config.workdir) if "notes" in n or "big" in n]


def test_a_reference_group_is_a_target(client, explorer):
    files = [("files", (f"{i}.png", explorer.run_image_bytes(i))) for i in range(3)]
    group = client.post("/api/groups", files=files).json()
    assert group["images"] == 3 and 0 <= group["nearest_cluster"] < 4
    run = client.post("/api/photos/run/1").json()
    answer = client.post("/api/edit", json={"photo": run["id"], "face": -1, "group": group["id"]})
    assert answer.status_code == 200 and common.decode(answer.content).ndim == 3
    # Only what the group's photos share: each face keeps its own statistics and moves by
    # what they have in common (strength 0: the face's own cluster, not the group's).
    request = {"photo": run["id"], "face": -1, "group": group["id"], "format": "png"}
    whole = client.post("/api/edit", json=request)
    shared = client.post("/api/edit", json={**request, "shared": 1.0})
    assert shared.status_code == 200 and "group_shared_s1" in shared.headers["content-disposition"]
    none = client.post("/api/edit", json={**request, "shared": 0})
    assert not np.array_equal(common.decode(none.content), common.decode(whole.content))
    bad = client.post("/api/edit", json={**request, "shared": 3})
    assert bad.status_code == 400 and "expected a number in [0, 2]" in bad.json()["detail"]


def _own_cluster(explorer, path: str) -> int:
    """The cluster the photo's largest face lies in (s_src of the edits)."""
    from xplore_tf.common import signatures as sig

    photo = explorer.add_photo(open(path, "rb").read(), "face.jpg")
    crop = explorer.photo(photo["id"]).found[0].crop
    out = explorer.backend.predict(
        sig.TRANSLATE_FULL,
        {
            sig.IMAGE_BYTES: np.array([common.png_bytes(crop)], object),
            sig.CLUSTER_WEIGHTS: np.zeros((1, explorer.k), np.float32),
        },
    )
    return int(out[sig.SOURCE_CLUSTER][0])


@pytest.mark.skipif(bool(browser.browser_missing()), reason=browser.browser_missing() or "ok")
def test_the_page_in_a_real_browser(explorer, face_photo, tmp_path):
    """Cards, a rename saved to cluster_names.json, an upload, a slider that changes the
    result, and a text file refused in the page."""
    from selenium.webdriver.common.by import By

    target = (_own_cluster(explorer, face_photo) + 1) % 4  # moving toward its own changes nothing
    url, server = browser.start_page(explorer)
    driver = browser.chromium()
    shots = os.environ.get("XPLORE_SCREENSHOTS") or str(tmp_path)
    try:
        assert len(browser.cards(driver, url)) == 4
        driver.save_screenshot(os.path.join(shots, "explore_cards.png"))
        name = driver.find_element(By.ID, "name-3")
        name.clear()
        name.send_keys("blond")
        driver.find_element(By.ID, "save-3").click()
        browser.wait(driver, lambda d: d.find_element(By.ID, "saved-3").text == "saved")
        with open(explorer.names_path) as f:
            assert json.load(f)["3"] == "blond"
        first = browser.edit(driver, face_photo, cluster=target)
        assert driver.find_elements(By.CSS_SELECTOR, "#faces button")[0].text == "face 1 (largest)"
        second = browser.edit(driver, face_photo, cluster=target, strength=2.0)
        assert first != second and common.decode(second).shape == common.decode(first).shape
        driver.save_screenshot(os.path.join(shots, "explore_edit.png"))
        notes = tmp_path / "notes.txt"
        notes.write_text("not a photo")
        driver.find_element(By.ID, "photo-file").send_keys(str(notes))
        message = browser.wait(driver, lambda d: d.find_element(By.ID, "error").text)
        assert "notes.txt: not a PNG, JPEG, GIF, BMP or WebP image" in message
    finally:
        browser.quit_browser(driver)
        server.should_exit = True


def test_two_users_editing_at_once_each_get_their_own_edit(client):
    """Requests run in FastAPI's thread pool; the model is called one at a time."""
    import concurrent.futures

    photos = [client.post(f"/api/photos/run/{i}").json()["id"] for i in (2, 3)]

    def edit(args):
        photo, strength = args
        body = {"photo": photo, "face": -1, "clusters": {"1": strength}, "format": "png"}
        return client.post("/api/edit", json=body)

    jobs = [(p, s) for p in photos for s in (0.5, 1.5)] * 2
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(edit, jobs))
    assert all(a.status_code == 200 for a in answers)
    by_job = {}
    for job, answer in zip(jobs, answers, strict=True):
        by_job.setdefault(job, set()).add(answer.content)
    assert all(len(contents) == 1 for contents in by_job.values())  # the same edit each time
    assert len({next(iter(c)) for c in by_job.values()}) == 4  # and one per photo and strength


def test_a_served_model_edits_as_the_one_in_process(explorer, tmp_path_factory):
    """--server: the same requests over gRPC (the project's client, TF Serving's API)."""
    from xplore_tf import explore_lib
    from xplore_tf.testing import dev_server

    base = tiny_export(tmp_path_factory)
    saved_model = os.path.join(base, explorer.config.export.model_name, "1")
    local = explore_lib.Explorer(
        explorer.config, explore_lib.make_backend(explorer.config, saved_model=saved_model)
    )
    srv, port = dev_server.serve(base, port=0)
    try:
        backend = explore_lib.make_backend(explorer.config, server=f"127.0.0.1:{port}")
        served = explore_lib.Explorer(explorer.config, backend)
        assert served.backend.full_resolution and served.k == local.k
        edits = []
        for page in (local, served):
            photo = page.add_run_image(0)["id"]
            edits.append(page.edit(photo, explore_lib.WHOLE_IMAGE, page.target({"1": 1.5})))
        np.testing.assert_array_equal(edits[0], edits[1])
        backend.close()
    finally:
        srv.stop(None)
