"""The report page in a real headless browser (Debian's chromium): every figure loads.

The page itself has no script; the test copies it next to itself with a tiny
inline script that, on ``load``, lists the images whose ``naturalWidth`` is 0
(missing or undecodable), and reads the verdict from ``--dump-dom``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from entrostat.report.html import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it: apt-get install chromium)")

_CHECK = """<script>addEventListener("load", function () {
  var bad = [], imgs = document.images;
  for (var i = 0; i < imgs.length; i++) if (!(imgs[i].complete && imgs[i].naturalWidth > 0)) bad.push(imgs[i].getAttribute("src"));
  var d = document.createElement("pre"); d.id = "imgcheck";
  d.textContent = "IMAGES " + imgs.length + " BROKEN [" + bad.join(",") + "]";
  document.body.appendChild(d);
});</script>"""


def browser_image_check(page: Path, tmp: Path) -> tuple[int, list[str]]:
    """(number of <img>, srcs of those that did not load) as headless chromium renders ``page``."""
    harness = page.with_name(f"_check_{page.name}")  # beside the page: its relative image paths still resolve
    harness.write_text(page.read_text().replace("</body>", _CHECK + "</body>"))
    res = subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={tmp / 'chromium-profile'}",
         "--allow-file-access-from-files", "--virtual-time-budget=5000", "--dump-dom", harness.resolve().as_uri()],
        check=False, capture_output=True, text=True, timeout=120,
    )
    harness.unlink()
    m = re.search(r"IMAGES (\d+) BROKEN \[([^\]]*)\]", res.stdout)
    assert m, f"chromium did not run the check (exit {res.returncode}): {res.stderr[-2000:]}"
    return int(m.group(1)), [s for s in m.group(2).split(",") if s]


def test_every_figure_loads_in_chromium_and_a_missing_one_is_caught(tmp_path, make_run, records):
    runs = [make_run("thermo", records(30, 10, target=1.0)), make_run("plain", records(30, 15))]
    page = write_report(runs, tmp_path / "site" / "report.html")
    srcs = re.findall(r'<img src="([^"]+)"', page.read_text())
    assert len(srcs) == 8
    assert browser_image_check(page, tmp_path) == (8, [])
    (page.parent / srcs[3]).unlink()  # a figure lost when the page was copied
    (page.parent / srcs[5]).write_bytes(b"not a png")  # and one corrupted
    assert browser_image_check(page, tmp_path) == (8, [srcs[3], srcs[5]])
