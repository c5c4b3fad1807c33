"""The report in a real browser: Debian's Chromium, headless, driven by Playwright (the Python
package only: never `playwright install`, the browser is /usr/bin/chromium).

The page of a synthetic site (9 schools, 4 communes, laptops, projectors, a campaign) renders
with no console error and no request but the file itself, and every plot is visible: the
full-page screenshot is cut to each plot's box, which must hold drawing, not a blank area.
Run by scripts/test (stage "report in Chromium"); `pytest tests/browser`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "unit"))

from conftest import site_data  # noqa: E402

from cartable.cli import main  # noqa: E402

CHROMIUM = os.environ.get("CARTABLE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
SCHOOLS = ["0350192U", "0351817K", "0350266Z", "0352094L", "0350423V", "0351986U", "0350425X",
           "0350650S", "0353062N"]
SCREENSHOT = REPO / ".cache" / "report-browser.png"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    site = folder / "site.yml"
    (folder / "hw.csv").write_text("uai,role,index,mac,model,purchase_date\n" + "".join(
        f"{uai},{role},1,,{role},{2014 + (n * 3 + k) % 11}-09-01\n"
        for n, uai in enumerate(SCHOOLS) for k, role in enumerate(("srv", "dir", "mfp"))))
    site.write_text(yaml.safe_dump(site_data(
        hardware="hw.csv", selection={"uai": SCHOOLS},
        options={"class_equipment": True, "laptop_cart": 2},
        renewal={"workstations": 6},
        billing={"tariff": {"per_workstation": 40, "per_pupil": 2.5, "fixed": 300}})))
    assert main(["inventory", "build", str(site)]) == 0
    status = folder / "campaigns" / "rentree" / "status.json"
    status.parent.mkdir(parents=True)
    status.write_text(json.dumps({
        "campaign": "rentree", "playbook": "playbooks/site.yml",
        "updated": "2026-10-31T18:00:00+00:00",
        "schools": {uai: {"state": state, "wave": wave, "started": None, "ended": None,
                          "failed_hosts": [], "failed_tasks": [], "changed": 0}
                    for uai, state, wave in (("0350192U", "ok", "w1"),
                                             ("0351817K", "failed", "w1"),
                                             ("0350266Z", "running", "w2"))}}))
    out = folder / "report"
    assert main(["report", str(site), "--as-of", "2026-11-01", "--out", str(out),
                 "--facts", str(folder / "none")]) == 0
    return out / "rapport.html"


def _drawn(image: Image.Image) -> float:
    """Share of the pixels that are not (near) white."""
    grey = image.convert("L")
    histogram = grey.histogram()
    return 1 - sum(histogram[245:]) / (grey.width * grey.height)


def test_the_report_renders_in_chromium(report, tmp_path) -> None:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: apt-get install chromium"
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=FLAGS, headless=True,
            viewport={"width": 1280, "height": 900}, offline=True)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning")
                    else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.as_uri(), wait_until="load")
            assert page.title().startswith("Parc informatique des écoles")
            boxes = {}
            for plot in page.query_selector_all("svg.plot"):
                box = plot.bounding_box()
                assert box is not None
                boxes[plot.get_attribute("data-plot")] = box
            shot = page.screenshot(full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert requests == [report.as_uri()]  # the page needs nothing else: it opens offline
    assert sorted(boxes) == ["age", "campagne", "eleves-par-poste", "equipement"]
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.write_bytes(shot)
    image = Image.open(io.BytesIO(shot))
    for name, box in boxes.items():
        assert box["width"] > 300 and box["height"] > 100, (name, box)
        area = image.crop((int(box["x"]), int(box["y"]), int(box["x"] + box["width"]),
                           int(box["y"] + box["height"])))
        assert _drawn(area) > 0.03, f"plot {name} looks blank (see {SCREENSHOT})"
        colours = {c for _, c in area.convert("RGB").getcolors(1 << 20) or []}
        assert len(colours) > 10, f"plot {name} has {len(colours)} colours"
    shutil.copy(SCREENSHOT, tmp_path / "report.png")
