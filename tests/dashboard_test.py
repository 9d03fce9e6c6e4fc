#!/usr/bin/env python3
"""The dashboard in headless Chromium against a real `vigil serve`, as an operator and a shop use it.

    dashboard_test.py VIGIL_BINARY [--screenshot docs/dashboard.png]

Starts `vigil serve` on a free loopback port with a temporary database, makes tokens with the CLI, posts
sightings with a camera token over HTTP, then drives the dashboard: sign-in, live view, review queue,
plate search, the sales form refused for an operator and accepted for a shop. Exits 77 (skipped) only
when Chromium, its driver or Selenium is not installed (scripts/deps.sh installs them).
"""
import argparse
import base64
import datetime
import io
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SKIP = 77
WAIT_S = 15  # longest wait for one thing to show in the page (the live view polls every 2 s)


def skip(message):
    print("SKIPPED: " + message)
    sys.exit(SKIP)


def find_browser():
    chromium = next((p for p in map(shutil.which, ["chromium", "chromium-browser", "google-chrome"]) if p), None)
    driver = shutil.which("chromedriver") or next(
        (p for p in ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"] if os.path.exists(p)), None)
    if not chromium:
        skip("Chromium is not installed (apt-get install chromium, or bash scripts/deps.sh)")
    if not driver:
        skip("chromedriver is not installed (apt-get install chromium-driver, or bash scripts/deps.sh)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        skip("Selenium for Python is not installed (apt-get install python3-selenium, or bash scripts/deps.sh)")
    return chromium, driver


class Serve:
    """A running `vigil serve` with its own database, and the HTTP calls the test makes besides the page."""

    def __init__(self, vigil, folder):
        self.vigil = vigil
        self.db = os.path.join(folder, "vigil.db")
        self.proc = subprocess.Popen([vigil, "serve", "--db", self.db, "--port", "0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.url = self.dashboard = None
        # A thread reads stdout: a buffered pipe and select() do not mix.
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l.rstrip()) for l in self.proc.stdout], daemon=True).start()
        seen = []
        deadline = time.monotonic() + 30
        while self.dashboard is None and time.monotonic() < deadline and self.proc.poll() is None:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line)
            if m := re.search(r"serving (http://127\.0\.0\.1:\d+)", line):
                self.url = m.group(1)
            if m := re.search(r"dashboard (http://\S+/)", line):
                self.dashboard = m.group(1)
        if not self.dashboard:
            self.stop()
            raise SystemExit("vigil serve printed no dashboard address:\n" + "\n".join(seen) + "\n" +
                             self.proc.stderr.read())

    def token(self, role, camera=None):
        cmd = [self.vigil, "serve", "token", "create", "--role", role, "--note", "dashboard test " + role,
               "--db", self.db]
        if camera:
            cmd += ["--camera", camera]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise SystemExit(f"token create --role {role} failed: {out.stderr}")
        return out.stdout.strip()

    def call(self, method, path, token, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + token,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                return res.status, json.loads(res.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def evidence():
    """A plate crop and the frame it comes from (a bundled sample), base64 JPEG as `vigil watch` posts them."""
    try:
        from PIL import Image
    except ImportError:
        raise SystemExit("Pillow is needed to make the evidence images (apt-get install python3-pil, or "
                         "bash scripts/deps.sh)")
    sample = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "samples", "ro-dashcam-close.jpg")
    with open(sample, "rb") as f:
        frame = f.read()
    crop = Image.open(io.BytesIO(frame)).crop((500, 470, 830, 560))  # the plate BR07AAC
    out = io.BytesIO()
    crop.save(out, "JPEG", quality=90)
    return base64.b64encode(out.getvalue()).decode(), base64.b64encode(frame).decode(), crop.width


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("vigil", help="the vigil binary")
    ap.add_argument("--screenshot", help="save a PNG of the live view here (for the README)")
    args = ap.parse_args()
    chromium, driver_path = find_browser()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    started = time.monotonic()
    crop_b64, frame_b64, crop_width = evidence()
    folder = tempfile.mkdtemp(prefix="vigil_dashboard_")
    serve = Serve(os.path.abspath(args.vigil), folder)
    browser = None
    try:
        camera = serve.token("camera", camera="GATE-1")
        shop = serve.token("shop")
        operator = serve.token("operator")
        admin = serve.token("admin")
        status, products = serve.call("GET", "/api/products", shop)
        assert status == 200, products
        status, sold = serve.call("POST", "/api/vignettes", shop, {
            "plate": "1AB2345", "country": "cz", "product": "cz-10d", "start": products["today"]})
        assert status == 201, sold

        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in ["--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,800",
                    "--no-first-run", "--disable-extensions", "--lang=en-GB"]:
            options.add_argument(arg)
        if os.geteuid() == 0:
            options.add_argument("--no-sandbox")  # Chromium's sandbox refuses to run as root
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        browser = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        # Lists are rebuilt when they refresh: an element found a moment ago may be gone; look again.
        wait = WebDriverWait(browser, WAIT_S, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException])

        def by_id(i):
            return browser.find_element(By.ID, i)

        def visible(i):
            return wait.until(lambda d: d.find_element(By.ID, i).is_displayed() and d.find_element(By.ID, i),
                              message=f"#{i} did not show")

        def text_of(i, pattern):
            """Waits until #i shows text matching pattern; returns the text."""
            found = {}

            def check(d):
                e = d.find_element(By.ID, i)
                found["text"] = e.text
                return e.is_displayed() and re.search(pattern, e.text)
            try:
                wait.until(check)
            except Exception:
                errors = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".error") if e.is_displayed()]
                raise AssertionError(f"#{i} never showed /{pattern}/; it shows {found.get('text')!r}; "
                                     f"errors shown: {errors}")
            return found["text"]

        def sign_in(token, role=None):
            """Signs in; with a role, waits until the page says who is signed in."""
            visible("login")
            by_id("token").clear()
            by_id("token").send_keys(token)
            by_id("login-form").submit()
            if role:
                text_of("who-role", "^" + role)

        def tab(view):
            browser.find_element(By.CSS_SELECTOR, f'.tab[data-view="{view}"]').click()
            visible("view-" + view)

        def cards(list_id):
            return {e.find_element(By.CSS_SELECTOR, ".plate").text: e.get_attribute("data-decision")
                    for e in browser.find_elements(By.CSS_SELECTOR, f"#{list_id} > li.card")}

        shots = os.environ.get("VIGIL_DASHBOARD_SHOTS")  # a folder: a screenshot before each step (debugging)

        def step(name):
            print(f"  {time.monotonic() - started:5.1f} s  {name}", flush=True)
            if shots:
                step.n = getattr(step, "n", 0) + 1
                browser.save_screenshot(os.path.join(shots, f"{step.n:02d}.png"))

        step("open " + serve.dashboard)
        browser.get(serve.dashboard)
        assert browser.title == "Vigil", browser.title
        sign_in("vgl_this-token-does-not-exist-0123456789abcdef")
        text_of("login-error", r"not accepted: unknown or revoked token")
        sign_in(camera)
        text_of("login-error", r"camera token: cameras only post sightings")

        step("operator signs in; the live view polls")
        sign_in(operator, "operator")
        visible("view-live")
        text_of("live-state", r"updated")
        assert browser.execute_script("return sessionStorage.getItem('vigil.token')") == operator
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        status, posted = serve.call("POST", "/api/sightings", camera, {"sightings": [
            {"id": "dash-paid", "camera_id": "GATE-1", "time": now, "text": "1AB2345", "confidence": 0.97,
             "country": "cz"},
            {"id": "dash-unpaid", "camera_id": "GATE-1", "time": now, "text": "5SC6789", "confidence": 0.95,
             "country": "cz"},
            {"id": "dash-review", "camera_id": "GATE-1", "time": now, "text": "7KL1234", "confidence": 0.31,
             "country": "cz"},
            {"id": "dash-evidence", "camera_id": "GATE-1", "time": now, "text": "BR07AAC", "confidence": 0.98,
             "country": "uk", "images": {"plate": crop_b64, "frame": frame_b64}}]})
        assert status == 200 and posted["stored"] == 4, posted
        expected = {"1AB2345": "paid", "5SC6789": "unpaid", "7KL1234": "review", "BR07AAC": "unpaid"}
        try:
            wait.until(lambda d: cards("live-list") == expected)
        except Exception:
            raise AssertionError(f"the live view shows {cards('live-list')}, expected {expected}")
        shown = browser.find_elements(By.CSS_SELECTOR, "#live-list > li.card")
        ids = [int(c.get_attribute("data-sighting-id")) for c in shown]
        assert ids == sorted(ids, reverse=True), f"the live view is not newest first: {ids}"
        for card in shown:
            assert "Camera GATE-1" in card.text, card.text
            if "BR07AAC" not in card.text:
                assert card.find_element(By.CSS_SELECTOR, ".thumb .noimg").text == "no image", card.text
        text_of("review-count", r"^1$")

        step("evidence: the plate crop and the frame, fetched with the token")
        card = next(c for c in shown if "BR07AAC" in c.text)
        loaded = "const i = arguments[0]; return i && i.src.startsWith('blob:') && i.complete ? i.naturalWidth : 0;"
        wait.until(lambda d: d.execute_script(loaded, card.find_element(By.CSS_SELECTOR, ".thumb img")) == crop_width,
                   message="the plate crop did not show")
        card.find_element(By.XPATH, ".//button[normalize-space()='Show frame']").click()
        wait.until(lambda d: d.execute_script(loaded, by_id("frame-image")) == 1280, message="the frame did not show")
        by_id("frame-close").click()
        if args.screenshot:
            os.makedirs(os.path.dirname(os.path.abspath(args.screenshot)), exist_ok=True)
            browser.set_window_size(900, 760)
            time.sleep(0.3)  # let the layout settle after the resize
            browser.save_screenshot(args.screenshot)
            browser.set_window_size(1100, 800)
            step(f"screenshot {args.screenshot} ({os.path.getsize(args.screenshot) // 1024} KB)")

        step("phone width: nothing wider than the screen")
        browser.set_window_size(390, 844)
        time.sleep(0.3)
        width = browser.execute_script("return window.innerWidth")
        assert width <= 400, f"the window did not shrink to a phone's width ({width} px)"
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the live view is {overflow} px wider than a phone screen"
        browser.set_window_size(1100, 800)

        step("violations")
        tab("violations")
        wait.until(lambda d: cards("violations-list") == {"5SC6789": "unpaid", "BR07AAC": "unpaid"},
                   message="the violation did not show")

        step("review: dismiss the low-confidence read")
        tab("review")
        wait.until(lambda d: cards("review-list") == {"7KL1234": "review"}, message="the review item did not show")
        step("review item shown with its actions")
        item = browser.find_element(By.CSS_SELECTOR, "#review-list > li.card")
        item.find_element(By.XPATH, ".//button[normalize-space()='Dismiss']").click()
        text_of("review-status", r"7KL1234\) dismissed: now dismissed")
        wait.until(lambda d: not cards("review-list"), message="the resolved item stayed in the queue")
        by_id("review-refresh").click()
        visible("review-empty")
        assert not cards("review-list")
        status, queue = serve.call("GET", "/api/review", operator)
        assert status == 200 and queue["review"] == [], queue

        step("plate search")
        tab("plates")
        by_id("plate-query").send_keys("5sc 6789")
        by_id("plate-form").submit()
        text_of("plate-status", r"(?i)5SC6789\s+unpaid")
        assert cards("plate-sightings") == {"5SC6789": "unpaid"}, cards("plate-sightings")
        visible("plate-records-empty")
        by_id("plate-query").clear()
        by_id("plate-query").send_keys("5SC@6789")
        by_id("plate-form").submit()
        text_of("plate-error", r"'@'.*HTTP 400")

        step("an operator may not sell: the refusal is shown")
        tab("vignettes")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#buy-product option")) >= 4,
                   message="the products did not load")
        by_id("buy-plate").send_keys("5SC6789")
        by_id("buy-form").submit()
        text_of("buy-error", r"Refused: an operator token may not call POST /api/vignettes \(needs shop or admin\)"
                             r" \(HTTP 403\)\. Selling needs a shop or admin token\.")

        step("log out; the shop signs in and sells")
        by_id("logout").click()
        visible("login")
        assert browser.execute_script("return sessionStorage.getItem('vigil.token')") is None
        assert not by_id("app").is_displayed()
        sign_in(shop, "shop")
        visible("view-vignettes")
        shown = [t.get_attribute("data-view") for t in browser.find_elements(By.CSS_SELECTOR, ".tab")
                 if t.is_displayed()]
        assert shown == ["vignettes"], f"a shop sees the tabs {shown}"
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#buy-product option")) >= 4,
                   message="the products did not load")
        assert by_id("buy-start").get_attribute("value") == products["today"]
        by_id("buy-plate").send_keys("5SC 6789")
        Select(by_id("buy-product")).select_by_value("cz-10d")
        by_id("buy-order").send_keys("DASH-1")
        by_id("buy-form").submit()
        text_of("buy-status", r"Sold: vignette #\d+ for 5SC6789, cz-10d, valid " + products["today"])
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#lookup-list > li.record"),
                   message="the sale did not show in the lookup")
        by_id("buy-form").submit()  # the same order id again: stored once
        text_of("buy-status", r"Already stored: order DASH-1")
        by_id("lookup-query").clear()
        by_id("lookup-query").send_keys("1AB2345")
        by_id("lookup-form").submit()
        wait.until(lambda d: "1AB2345" in by_id("lookup-list").text, message="lookup by plate found nothing")

        step("the admin sees the plate paid")
        by_id("logout").click()
        sign_in(admin, "admin")
        tab("plates")
        by_id("plate-query").send_keys("5SC6789")
        by_id("plate-form").submit()
        text_of("plate-status", r"(?i)5SC6789\s+paid")
        records = browser.find_elements(By.CSS_SELECTOR, "#plate-records > li.record")
        assert len(records) == 1 and "DASH-1" in records[0].text, [r.text for r in records]

        step("the admin makes a token and revokes it")
        tab("tokens")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#tokens-list > li.record")) == 4,
                   message="the four CLI tokens were not listed")
        Select(by_id("token-role")).select_by_value("operator")
        by_id("token-note").send_keys("night shift")
        by_id("token-form").submit()
        text_of("token-new", r"Token #\d+ \(operator\): copy it now")
        made = by_id("token-secret").get_attribute("value")
        status, me = serve.call("GET", "/api/me", made)
        assert status == 200 and me["role"] == "operator" and me["note"] == "night shift", me
        item = wait.until(lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, "#tokens-list > li.record")
                                          if "night shift" in e.text), None), message="the new token is not listed")
        item.find_element(By.XPATH, ".//button[normalize-space()='Revoke']").click()
        browser.switch_to.alert.accept()
        wait.until(lambda d: any("night shift" in e.text and "REVOKED" in e.text.upper()
                                 for e in d.find_elements(By.CSS_SELECTOR, "#tokens-list > li.record")),
                   message="the token did not show as revoked")
        assert serve.call("GET", "/api/me", made)[0] == 401

        problems = [e["message"] for e in browser.get_log("browser")
                    if e["level"] == "SEVERE" and "the server responded with a status of" not in e["message"]]
        assert not problems, "the browser reported errors:\n" + "\n".join(problems)
        step("all good")
    finally:
        if browser:
            browser.quit()
        serve.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
