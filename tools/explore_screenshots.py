"""Drive the explore page in headless Chromium: the browser steps of its test, and its screenshots.

    python -m tools.explore_screenshots --flagfile=configs/celeba10k_mobilenet.cfg \\
        --photo=face.jpg --cluster=12 --out=docs/   # explore_cards.png, explore_edit.png

Starts `xplore_tf.explore`'s page for a run in this process, opens it in Debian's
`chromium` through `chromedriver` (Selenium; no browser download), shows the cluster cards,
uploads `--photo`, moves one slider toward `--cluster`, and saves a screenshot of each view.
`tests/test_explore.py` drives the same functions against a tiny run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def browser_missing() -> str:
    """Why the browser cannot run here ("" when it can)."""
    import importlib.util

    for module in ("selenium", "fastapi", "uvicorn", "multipart"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return ""


def start_page(explorer, *, max_upload_bytes: int = 25 << 20) -> tuple[str, object]:
    """Serves the page on a free 127.0.0.1 port in a background thread -> (URL, server)."""
    from xplore_tf import explore_app

    page = explore_app.make_app(explorer, max_upload_bytes=max_upload_bytes)
    ready = threading.Event()
    found: list = []

    def on_ready(url, server):
        found.extend([url, server])
        ready.set()

    thread = threading.Thread(
        target=explore_app.serve,
        kwargs=dict(app=page, host="127.0.0.1", port=0, ready=on_ready),
        daemon=True,
    )
    thread.start()
    if not ready.wait(60):
        raise RuntimeError("the explore page did not start within 60 s")
    return found[0], found[1]


def chromium(width: int = 1400, height: int = 1000):
    """A headless Chromium driven by chromedriver (its own empty profile, no network calls)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="xplore_tf-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.profile_dir = profile
    return driver


def quit_browser(driver) -> None:
    driver.quit()
    shutil.rmtree(driver.profile_dir, ignore_errors=True)


def wait(driver, condition, timeout: float = 60.0, what: str = "the page"):
    """Polls condition(driver) until truthy; returns it. TimeoutError naming `what`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = condition(driver)
        except Exception:  # noqa: BLE001 - not there yet
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"waited {timeout:.0f} s for {what}")


def cards(driver, url: str) -> list:
    """Opens the page; waits for the cluster cards and their images; returns the cards."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    found = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#cards .card"), what="cards")
    wait(
        driver,
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('#cards img')].every(i => i.complete)"
        ),
        what="the cards' images",
    )
    return found


def after_image(driver) -> bytes:
    """The bytes of the result image the page shows (b"" while there is none)."""
    script = """
        const done = arguments[arguments.length - 1];
        const src = document.getElementById('after').src;
        if (!src) { done(''); return; }
        fetch(src).then(r => r.arrayBuffer()).then(b => {
            let s = ''; for (const x of new Uint8Array(b)) s += String.fromCharCode(x);
            done(btoa(s)); });
    """
    import base64

    return base64.b64decode(driver.execute_async_script(script) or "")


def edit(driver, photo: str, cluster: int, strength: float | None = None) -> bytes:
    """Edit tab: uploads `photo`, adds a slider toward `cluster` (and sets it to `strength`);
    waits for the result; returns its bytes."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.find_element(By.ID, "tab-edit").click()
    if not driver.execute_script("return typeof state !== 'undefined' && state.photo"):
        driver.find_element(By.ID, "photo-file").send_keys(os.path.abspath(photo))
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#faces button"), what="faces")
    if not driver.find_elements(By.ID, f"strength-{cluster}"):
        Select(driver.find_element(By.ID, "add-cluster")).select_by_value(str(cluster))
        driver.find_element(By.ID, "add").click()
    before = after_image(driver)
    if strength is not None:
        driver.execute_script(
            "const r = document.getElementById(arguments[0]); r.value = arguments[1];"
            "r.dispatchEvent(new Event('input'));",
            f"strength-{cluster}",
            str(strength),
        )
    return wait(
        driver,
        lambda d: (lambda b: b if b and b != before else None)(after_image(d)),
        what=f"the edit toward cluster {cluster}",
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--flagfile", required=True, help="the run's flagfile")
    p.add_argument("--workdir", default="", help="the run's folder (default: the flagfile's)")
    p.add_argument("--photo", required=True, help="a photo to upload")
    p.add_argument("--cluster", type=int, required=True, help="the cluster to move toward")
    p.add_argument("--strength", type=float, default=1.0, help="the slider's value")
    p.add_argument("--out", required=True, help="folder for explore_cards.png, explore_edit.png")
    p.add_argument("--extra_flags", default="", help="more flags for the run, space separated")
    args = p.parse_args(argv)
    missing = browser_missing()
    if missing:
        raise SystemExit(f"tools.explore_screenshots: {missing}")
    from xplore_tf import explore_lib
    from xplore_tf import flags as xflags

    flag_argv = ["explore", f"--flagfile={args.flagfile}", *args.extra_flags.split()]
    if args.workdir:
        flag_argv.append(f"--workdir={args.workdir}")
    xflags.FLAGS(flag_argv)
    config = xflags.config_from_flags()
    explorer = explore_lib.Explorer(config, explore_lib.make_backend(config))
    url, _ = start_page(explorer)
    driver = chromium()
    try:
        cards(driver, url)
        os.makedirs(args.out, exist_ok=True)
        driver.save_screenshot(os.path.join(args.out, "explore_cards.png"))
        edit(driver, args.photo, args.cluster, args.strength)
        driver.save_screenshot(os.path.join(args.out, "explore_edit.png"))
    finally:
        quit_browser(driver)
    print(f"wrote {args.out}/explore_cards.png and explore_edit.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
