"""Dataset statistics: the bars (reports/dataset_stats.py), `pneumoviewer stats`, and View → Dataset
statistics, where clicking a bar shows only its cases in the worklist."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
import ui_driver  # tests/ui_driver.py
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from ui_driver import WAIT_MS, open_and_wait

from pneumoviewer.cli import main
from pneumoviewer.io.dicom import read_header
from pneumoviewer.reports.dataset_stats import age_years, dataset_stats
from pneumoviewer.review.case import Case

make_window = ui_driver.make_window  # fixtures
study_folder = ui_driver.study_folder


@pytest.fixture(autouse=True)
def private_user_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


@pytest.mark.parametrize(("age", "years"), [("045Y", 45), ("45", 45), ("006M", 0.5), ("", None), ("old", None)])
def test_ages_in_years(age, years) -> None:
    assert age_years(age) == (years if years is None else pytest.approx(years))


def test_every_case_is_in_one_bar_of_each_plot(study_folder: Path) -> None:
    cases = [Case.from_metadata(read_header(path), f"Case {n}")
             for n, path in enumerate(sorted(study_folder.rglob("study*/*.dcm")))]
    stats = dataset_stats(cases, {cases[0].image_id: 3.2})
    for plot in stats.plots:
        assert sum(bar.count for bar in plot.bars) == (1 if plot.key == "lesion_area" else len(cases)), plot.key
    assert Counter({bar.label: bar.count for bar in stats.plot("view").bars}) == Counter(
        case.view_position for case in cases)
    assert stats.plot("ai").title == "AI call: none scored yet" and stats.plot("ai").note
    assert [bar.label for bar in stats.plot("lesion_area").bars if bar.count] == ["2–5"]


def test_stats_command_writes_plots_and_counts(study_folder: Path, siim_labels_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "stats"
    assert main(["stats", str(study_folder), "--labels", str(siim_labels_csv), "--out", str(out)]) == 0
    assert {path.name for path in out.iterdir()} == {
        "age.png", "sex.png", "view.png", "ai.png", "review.png", "lesion_area.png", "spacing.png", "labels.png",
        "statistics.csv"}
    rows = list(csv.DictReader((out / "statistics.csv").read_text().splitlines()))
    counts = {(row["plot"], row["bar"]): int(row["count"]) for row in rows}
    headers = [read_header(path) for path in study_folder.rglob("study*/*.dcm")]
    for view, count in Counter(header.view_position for header in headers).items():
        assert counts[("view", view)] == count
    assert counts[("labels", "pneumothorax")] == ui_driver.POSITIVES
    assert counts[("labels", "none")] == ui_driver.NEGATIVES
    assert sum(count for (plot, _), count in counts.items() if plot == "lesion_area") == ui_driver.POSITIVES
    assert counts[("review", "unreviewed")] == len(headers)


def test_a_folder_without_readable_images_still_gets_its_plots(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"truncated")
    out = tmp_path / "stats"
    assert main(["stats", str(folder), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "broken.dcm" in printed.err and "No readable image in this folder" in printed.out
    assert (out / "age.png").stat().st_size > 0 and (out / "statistics.csv").is_file()


def _click_bar(dock, plot_key: str, label: str) -> None:
    """A left click on the middle of a bar of the dock's plot `plot_key`, as the reader's mouse would."""
    index = [plot.key for plot in dock.stats.plots].index(plot_key)
    plot_item = dock.graphs.ci.getItem(index // 2, index % 2)
    bars = dock.stats.plots[index].bars
    number = [bar.label for bar in bars].index(label)
    scene_point = plot_item.vb.mapViewToScene(QPointF(number, bars[number].count / 2))
    viewport_point = dock.graphs.mapFromScene(scene_point)
    QTest.mouseClick(dock.graphs.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     viewport_point)


def test_clicking_a_bar_shows_only_its_cases(qtbot, make_window, study_folder: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    ui_driver.wait_for_predictions(qtbot, window)
    view_menu = next(action.menu() for action in window.menuBar().actions() if action.text() == "&View")
    next(action for action in view_menu.actions() if action.objectName() == "show_statistics").trigger()
    dock = window.statistics
    qtbot.waitUntil(lambda: dock.isVisible() and dock.stats is not None, timeout=WAIT_MS)
    assert sum(bar.count for bar in dock.stats.plot("ai").bars if bar.label != "not scored") == 5
    views = Counter(case.view_position for case in window.controller.session.cases)
    view = views.most_common()[-1][0]
    qtbot.wait(100)
    _click_bar(dock, "view", view)
    qtbot.waitUntil(lambda: window.worklist_model.rowCount() == views[view])
    shown = {window.worklist_model.image_id_at(row) for row in range(window.worklist_model.rowCount())}
    assert {window.controller.session.case(image_id).view_position for image_id in shown} == {view}
    assert f"only View position = {view}" in dock.summary.text()
    QTest.mouseClick(dock.show_all, Qt.MouseButton.LeftButton)
    assert window.worklist_model.rowCount() == len(window.controller.session.cases)
