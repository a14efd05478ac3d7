"""File → Open from PACS… and Review → Send results to PACS…, driven as a reader would, against a real Orthanc
(tests/orthanc_server.py): query, retrieve (the studies open in the worklist and are triaged), review, send,
send again (nothing twice), a refused login shown per object and retried."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import ui_driver  # tests/ui_driver.py
from orthanc_server import PASSWORD, USER, OrthancServer, require_orthanc
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from ui_driver import WAIT_MS

from pneumoviewer.pacs.nodes import PacsNode, load_nodes, save_nodes

make_window = ui_driver.make_window  # fixtures
study_folder = ui_driver.study_folder


@pytest.fixture
def orthanc(tmp_path: Path, study_folder: Path) -> OrthancServer:
    require_orthanc()
    server = OrthancServer(tmp_path / "orthanc").start()
    server.upload(sorted(path for path in study_folder.rglob("*.dcm") if path.name != "broken.dcm"))
    yield server
    server.stop()


def click(qtbot, button) -> None:
    # A button comes back when the dialog's worker has finished, a moment after its results show.
    qtbot.waitUntil(button.isEnabled, timeout=WAIT_MS)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_open_from_pacs_retrieves_opens_and_triages(qtbot, make_window, orthanc: OrthancServer, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    window = make_window()
    save_nodes([PacsNode("Ward PACS", "dicomweb", url=orthanc.dicomweb_url, username=USER, password=PASSWORD)])

    window.actions_by_name["open_pacs"].trigger()
    dialog = window.pacs_dialog
    assert dialog.isVisible() and dialog.nodes.currentText().startswith("Ward PACS: dicomweb")
    QTest.keyClicks(dialog.date_from, "2030")
    click(qtbot, dialog.search)
    qtbot.waitUntil(lambda: "dates are YYYYMMDD" in dialog.message.text())
    dialog.date_from.clear()
    click(qtbot, dialog.search)
    qtbot.waitUntil(lambda: dialog.results.rowCount() == 5, timeout=WAIT_MS)
    assert dialog.message.text() == "5 studies found."
    assert dialog.results.item(0, 4).text() == "CR" and dialog.results.item(0, 0).text() == "1901-01-01"
    dialog.results.selectAll()

    with qtbot.waitSignal(window.controller.sigTitleChanged, timeout=WAIT_MS):
        click(qtbot, dialog.retrieve)
    assert not dialog.isVisible()
    session = window.controller.session
    qtbot.waitUntil(lambda: window.controller.session is not None and len(window.controller.session.cases) == 5,
                    timeout=WAIT_MS)
    session = window.controller.session
    cache = tmp_path / "cache" / "PneumoViewer" / "pacs"
    assert all(case.path.is_relative_to(cache) for case in session.cases)
    qtbot.waitUntil(lambda: all(case.has_ai_result for case in session.cases), timeout=WAIT_MS)  # triaged


def test_a_retrieval_is_cancelled_from_the_dialog(qtbot, make_window, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from pneumoviewer.pacs.studies import StudyRecord

    require_orthanc()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    window = make_window()
    with socket.socket() as hung:  # a server that accepts and never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        save_nodes([PacsNode("Hung", "dicomweb", url=f"http://127.0.0.1:{hung.getsockname()[1]}", timeout_s=3)])
        window.actions_by_name["open_pacs"].trigger()
        dialog = window.pacs_dialog
        dialog._show_studies([StudyRecord("1.2.3.4", patient_id="P1", study_date="20240101")])
        dialog.results.selectAll()
        click(qtbot, dialog.retrieve)
        assert dialog.progress.isVisible() and not dialog.retrieve.isEnabled()
        click(qtbot, dialog.cancel)
        qtbot.waitUntil(lambda: dialog.message.text().startswith("Retrieval cancelled"), timeout=WAIT_MS)
    assert dialog.isVisible() and window.controller.session is None


def test_send_results_to_pacs_once_with_per_object_status(qtbot, make_window, orthanc: OrthancServer,
                                                          study_folder: Path) -> None:
    window = make_window()
    save_nodes([PacsNode("Wrong login", "dicomweb", url=orthanc.dicomweb_url, username=USER, password="wrong"),
                PacsNode("Ward PACS", "dimse", ae_title="TESTPACS", host="127.0.0.1", port=orthanc.dicom_port)])
    ui_driver.open_and_wait(qtbot, window, study_folder)
    session = window.controller.session
    QTest.keyClick(window, Qt.Key.Key_R)  # the first case on screen: no pneumothorax
    QTest.keyClick(window, Qt.Key.Key_J)
    accepted = session.case(window.controller.current_id)
    qtbot.waitUntil(lambda: accepted.has_ai_result, timeout=WAIT_MS)
    QTest.keyClick(window, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: accepted.status.value == "accepted")
    before = orthanc.instance_count()

    review_menu = next(action.menu() for action in window.menuBar().actions() if action.text() == "&Review")
    next(action for action in review_menu.actions() if action.objectName() == "send_pacs").trigger()
    dialog = window.pacs_dialog
    assert dialog.nodes.currentText().startswith("Wrong login")

    def send_and_wait() -> list[str]:
        click(qtbot, dialog.send)
        qtbot.waitUntil(lambda: dialog.worker is None and dialog.table.rowCount() == 4, timeout=WAIT_MS)
        return [dialog.table.item(row, 2).text() for row in range(4)]

    statuses = send_and_wait()
    assert all(status.startswith("failed: ") and "HTTP 401" in status for status in statuses), statuses
    assert dialog.send.text() == "Retry" and "4 failed" in dialog.message.text()
    dialog.nodes.setCurrentIndex(1)
    assert send_and_wait() == ["sent"] * 4
    assert orthanc.instance_count() == before + 4
    assert [dialog.table.item(row, 1).text().split()[0] for row in range(4)] == ["DICOM", "Overlay"] * 2
    assert send_and_wait() == ["already sent"] * 4  # nothing twice
    assert orthanc.instance_count() == before + 4
    dialog.close()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)  # the reader is back in the window

    QTest.keyClick(window, Qt.Key.Key_J)  # one more case read: its objects go, sent alone
    QTest.keyClick(window, Qt.Key.Key_R)
    next(action for action in review_menu.actions() if action.objectName() == "send_pacs").trigger()
    dialog = window.pacs_dialog
    dialog.nodes.setCurrentIndex(1)
    dialog.only_current.setChecked(True)
    click(qtbot, dialog.send)
    qtbot.waitUntil(lambda: dialog.worker is None and dialog.table.rowCount() == 2, timeout=WAIT_MS)
    assert [dialog.table.item(row, 2).text() for row in range(2)] == ["sent"] * 2
    assert {dialog.table.item(row, 0).text() for row in range(2)} == {session.case(window.controller.current_id)
                                                                      .display_id}
    assert orthanc.instance_count() == before + 6
    dialog.only_current.setChecked(False)  # all reviewed cases: what went before does not go again
    click(qtbot, dialog.send)
    qtbot.waitUntil(lambda: dialog.worker is None and dialog.table.rowCount() == 6, timeout=WAIT_MS)
    assert sorted(dialog.table.item(row, 2).text() for row in range(6)) == ["already sent"] * 6
    assert orthanc.instance_count() == before + 6
    assert [node.name for node in load_nodes()] == ["Wrong login", "Ward PACS"]


def test_node_dialog_checks_what_it_saves(qtbot) -> None:
    from pneumoviewer.ui.app import application
    from pneumoviewer.ui.pacs_dialogs import NodeDialog

    application()
    dialog = NodeDialog()
    qtbot.addWidget(dialog)
    dialog.name.setText("Ward")
    dialog.kind.setCurrentIndex(1)  # DIMSE without an AE title or host
    dialog._check_and_accept()
    assert "needs an AE title" in dialog.problem.text() and dialog.node is None
    dialog.ae_title.setText("ORTHANC")
    dialog.host.setText("pacs.hospital")
    dialog.port.setValue(4242)
    dialog._check_and_accept()
    assert dialog.node == PacsNode("Ward", "dimse", ae_title="ORTHANC", host="pacs.hospital", port=4242)
    assert dialog.password.echoMode() == dialog.password.EchoMode.Password
