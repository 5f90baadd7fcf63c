"""Words from outside (a display name, Spotify's `error_description`, Storage's error text, a
file name) are shown in the window as text, never as markup: tags show as written, nothing is
loaded or linked."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import httpx
from PySide6.QtGui import Qt, QTextDocument
from PySide6.QtWidgets import QLabel, QListWidget, QTableWidget, QWidget
from rq.job import JobStatus

from favdesk.gui.describe import status_line
from favdesk.gui.panels.common import plain_tip
from favdesk.gui.state import Dashboard, JobOutcome, LinkState, PollPlan
from favdesk.gui.tray import Tray
from favdesk.spotify.api import spotify_error
from favdesk.storage import StoredFile
from favdesk.worker_events import WorkerState
from tests.gui import samples

NAME = '<b>x</b><img src="file:///etc/passwd"> &amp; <a href="http://evil.example">y</a>'
DESCRIPTION = '<a href="http://evil.example">Log in here</a><script>alert(1)</script>'
#: Spotify's token endpoint refusing the code with a markup-laden description, as favdesk says it.
LINK_ERROR = str(
    spotify_error(
        httpx.Response(400, json={"error": "invalid_grant", "error_description": DESCRIPTION})
    )
)
STORAGE_ERROR = 'Bucket not found: <img src=x onerror="alert(1)"><h1>big</h1>'
#: Each outside text by a fragment only it holds.
HOSTILE = {"passwd": NAME, "Log in here": DESCRIPTION, "onerror": STORAGE_ERROR}


def state() -> Dashboard:
    """A dashboard whose every outside text is hostile."""
    account = replace(samples.account(), display_name=NAME)
    failed = samples.job(state=JobStatus.FAILED, error=f"StorageError: {STORAGE_ERROR}")
    return Dashboard(
        startup="ready",
        storage_description="local folder /tmp/<i>store</i>",
        redis_where="unix:///run/favdesk/redis.sock db 0",
        accounts=(account,),
        user_id=account.user_id,
        link=LinkState(error=LINK_ERROR),
        worker=WorkerState.IDLE,
        outcome=JobOutcome(
            "ingest-demo-listener", account.user_id, False, STORAGE_ERROR, datetime.now(UTC)
        ),
        snapshot=samples.snapshot(sync="error", reason="storage", jobs=[failed]),
        files=(
            StoredFile(
                key=f"spotify/demo-listener/{NAME}.json",
                name=f"{NAME}.json",
                size=1,
                updated_at=samples.NOW,
            ),
        ),
        files_error=STORAGE_ERROR,
        poll=PollPlan(True, 30.0, "visible"),
    )


def shown(text: str, rich: bool) -> str:
    """What a person reads: markup rendered when the widget takes `text` as rich text."""
    if not rich:
        return text
    document = QTextDocument()
    document.setHtml(text)
    return document.toPlainText()


def label_reads(label: QLabel) -> str:
    format_ = label.textFormat()
    rich = format_ == Qt.TextFormat.RichText or (
        format_ == Qt.TextFormat.AutoText and Qt.mightBeRichText(label.text())
    )
    return shown(label.text(), rich)


def tip_reads(tip: str) -> str:
    """Qt shows a tooltip as rich text when it looks like markup."""
    return shown(tip, Qt.mightBeRichText(tip))


def everything_shown(window: QWidget) -> list[tuple[str, str, str]]:
    """(where, raw text, what a person reads) for every label, list and table cell, tooltip."""
    found = []
    for label in window.findChildren(QLabel):
        name = label.accessibleName() or label.objectName() or type(label).__name__
        found.append((f"label {name}", label.text(), label_reads(label)))
        found.append((f"tooltip of {name}", label.toolTip(), tip_reads(label.toolTip())))
    for listing in window.findChildren(QListWidget):
        for row in range(listing.count()):
            item = listing.item(row)
            found.append((f"list {listing.accessibleName()}", item.text(), item.text()))
            found.append(("list tooltip", item.toolTip(), tip_reads(item.toolTip())))
    for table in window.findChildren(QTableWidget):
        for row in range(table.rowCount()):
            for column in range(table.columnCount()):
                item = table.item(row, column)
                if item is None:
                    continue
                where = f"table {table.accessibleName()} ({row}, {column})"
                found.append((where, item.text(), item.text()))
                found.append((f"{where} tooltip", item.toolTip(), tip_reads(item.toolTip())))
    return found


def test_outside_words_are_shown_as_written_everywhere_in_the_window(window, screenshot):
    window.show_state(state())
    screenshot(window, "outside-text-shown-as-text")
    places = everything_shown(window)
    for marker, text in HOSTILE.items():
        holding = [where for where, raw, reads in places if marker in raw or marker in reads]
        assert holding, f"{text!r} is shown nowhere: the test would prove nothing"
        for where, raw, reads in places:
            if marker in raw or marker in reads:
                assert text in reads, f"{where}: reads {reads!r}, not {text!r} as written"


def test_the_link_error_and_the_display_name_labels_are_plain_text(window):
    window.show_state(state())
    message = window.account.message
    assert message.textFormat() == Qt.TextFormat.PlainText
    assert message.text() == LINK_ERROR
    assert DESCRIPTION in LINK_ERROR
    linked = replace(state(), link=LinkState(message=f"Linked {NAME}."))
    window.show_state(linked)
    assert message.text() == f"Linked {NAME}."
    assert label_reads(window.account.status) == f"\N{BLACK CIRCLE} {NAME}: linked"
    assert tip_reads(window.account.status.toolTip()) == f"{NAME}: linked"
    assert window.sync.detail.textFormat() == Qt.TextFormat.PlainText
    assert window.sync.detail.text() == f"Details: {STORAGE_ERROR}"


def test_the_login_link_cannot_be_broken_out_of(window):
    url = 'http://127.0.0.1:1/authorize?x="><img src=y>'
    window.show_state(replace(state(), link=LinkState(waiting=True, url=url)))
    document = QTextDocument()
    document.setHtml(window.account.waiting.text())
    assert url in document.toPlainText()
    assert "<img" not in document.toHtml()


def test_the_tray_tooltip_shows_markup_as_written(qtbot):
    tray = Tray()
    try:
        shown_state = state()
        tray.show_state(shown_state)
        assert tip_reads(tray.icon.toolTip()) == f"favdesk: {status_line(shown_state)}"
        assert tip_reads(plain_tip(f"favdesk: {NAME}")) == f"favdesk: {NAME}"
        assert plain_tip("favdesk: Paused") == "favdesk: Paused"
    finally:
        tray.close()
