"""The interactive slice page: self-contained, one row per region in the page's own data
(bokeh's JSON document) with values that match the network, and in a real headless
browser: no errors, a hover shows the right region, a click selects its neighbours."""

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from oracles import random_network
from polyrelu import Network
from polyrelu.cli import main
from polyrelu.errors import PolyreluError
from polyrelu.network.loaders import save_npz
from polyrelu.planar.slices import slice_regions
from polyrelu.planar.view import SOURCE_NAME, slice_view

pytest.importorskip("bokeh")


@pytest.fixture(scope="module")
def network():
    return Network(*random_network((3, 8, 8, 3), np.random.default_rng(11)))


@pytest.fixture(scope="module")
def plane(network):
    return slice_regions(network, np.zeros(3), np.eye(3)[:, :2], ([-1, -1], [1, 1]))


@pytest.fixture(scope="module")
def page(plane, tmp_path_factory):
    path = tmp_path_factory.mktemp("view") / "view.html"
    slice_view(plane, path, output=1, points=[[0, 0], [0.5, 0.5]], labels=["a", "b"])
    return path


def _region_rows(path):
    """The regions' data source from the JSON document embedded in the page."""
    scripts = re.findall(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>',
                         Path(path).read_text(), re.DOTALL)
    document = next(iter(json.loads(scripts[0]).values()))
    found = []

    def visit(node):
        if isinstance(node, dict):
            if isinstance(node.get("attributes"), dict) and \
                    node["attributes"].get("name") == SOURCE_NAME:
                found.append(node)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(document)
    entries = found[0]["attributes"]["data"]["entries"]
    return {key: value for key, value in entries}


def test_the_page_is_self_contained_with_one_row_per_region(page, plane, network):
    text = page.read_text()
    assert "<script src=" not in text and "cdn.bokeh.org" not in text
    rows = _region_rows(page)
    assert rows["id"] == list(range(len(plane)))
    centroids = np.array([[np.mean(x), np.mean(y)] for x, y in zip(rows["xs"], rows["ys"])])
    polygon_centres = np.array([p.polygon.centroid.coords[0] for p in plane.pieces])
    outputs = network.forward(plane.to_input(polygon_centres))
    assert np.allclose(rows["output"], outputs[:, 1], atol=1e-12)
    assert rows["predicted"] == list(np.argmax(outputs, axis=1))
    assert [sorted(n) for n in rows["neighbours"]] == \
        [sorted(plane.graph[i]) for i in range(len(plane))]
    assert len(centroids) == len(plane)


def test_only_html_and_a_clear_error(plane, tmp_path):
    with pytest.raises(PolyreluError, match=".html"):
        slice_view(plane, tmp_path / "view.png")


def test_the_cli_writes_the_page(network, tmp_path, capsys):
    path = tmp_path / "net.npz"
    save_npz(network, path)
    assert main(["slice", str(path), "--plane", "0,0,0", "1,0,0", "0,1,0", "--tbox", "-1",
                 "1", "-o", str(tmp_path / "view.html")]) == 0
    assert "page: " in capsys.readouterr().out
    assert len(_region_rows(tmp_path / "view.html")["id"]) > 10


# ------------------------------------------------------------------ in a real browser

_BROWSER = shutil.which("chromium") and shutil.which("chromedriver")

_POSITION = """
const doc = Bokeh.documents[0];
const view = Bokeh.index.get_by_id(doc.roots()[0].id);
const data = doc.get_model_by_name(arguments[0]).data;
const xs = data.xs[arguments[1]], ys = data.ys[arguments[1]];
const cx = xs.reduce((a, b) => a + b) / xs.length, cy = ys.reduce((a, b) => a + b) / ys.length;
const canvas = view.canvas.el.getBoundingClientRect();
return [view.frame.x_scale.compute(cx) + canvas.left, view.frame.y_scale.compute(cy) + canvas.top];
"""

_TOOLTIP = """
function texts(root) {
  let out = [];
  for (const el of root.querySelectorAll('*')) {
    if (el.shadowRoot) out = out.concat(texts(el.shadowRoot));
    if (String(el.className).includes('bk-tooltip-content')) out.push(el.textContent);
  }
  return out;
}
return texts(document);
"""


@pytest.fixture(scope="module")
def browser():
    if not _BROWSER:
        pytest.skip("no headless browser (Debian's chromium and chromium-driver; .ci/run "
                    "installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run", "--window-size=900,700"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def _move(driver, x, y):
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    for dx in (0, 1, 0):  # bokeh's hover reacts to pointer motion
        actions = ActionBuilder(driver)
        actions.pointer_action.move_to_location(int(x) + dx, int(y))
        actions.perform()
        time.sleep(0.1)


def test_in_a_browser_hover_and_click(browser, page, plane, tmp_path):
    browser.get(page.as_uri())
    time.sleep(1.0)
    assert not [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    count = browser.execute_script(
        "return Bokeh.documents[0].get_model_by_name(arguments[0]).data.id.length", SOURCE_NAME)
    assert count == len(plane)
    rows = _region_rows(page)
    largest = int(np.argmax([p.polygon.area for p in plane.pieces]))
    _move(browser, *browser.execute_script(_POSITION, SOURCE_NAME, largest))
    shown = " ".join(browser.execute_script(_TOOLTIP))
    assert f"region: {largest} " in shown
    assert f"pattern: {rows['pattern'][largest]} " in shown
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    actions = ActionBuilder(browser)
    actions.pointer_action.click()
    actions.perform()
    time.sleep(0.3)
    selected = browser.execute_script(
        "return Bokeh.documents[0].get_model_by_name(arguments[0]).selected.indices",
        SOURCE_NAME)
    assert sorted(selected) == sorted([largest, *plane.graph[largest]])
    assert browser.save_screenshot(str(tmp_path / "view.png"))
    assert (tmp_path / "view.png").stat().st_size > 5000
