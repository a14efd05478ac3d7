"""A4 pages of case reports and worklist summaries, as PDF (real text, Qt's own PDF engine) or PNG.

`PageWriter` hands out one painter per page, whatever the format: the PDF gets pages of one file,
PNG one file per page. Painting happens in page pixels at `PAGE_DPI`; fonts are given in points, so
the text is the same size on paper in either format.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QMarginsF, QRectF, QSizeF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen

from pneumoviewer.reports.case_report import FOOTER, CaseReport, WorklistRow

PAGE_DPI = 150
FORMATS = ("pdf", "png")
_A4_MM = (210.0, 297.0)
_MARGIN = 70  # page pixels (about 12 mm)
_INK = QColor(20, 20, 20)
_GREY = QColor(110, 110, 110)
_ROWS_PER_PAGE = 12
_THUMBNAIL = 104


class PageWriter:
    """Pages into `path` (.pdf) or `path` with -1, -2… before .png; `written` lists the files."""

    def __init__(self, path: Path, page_format: str) -> None:
        if page_format not in FORMATS:
            raise ValueError(f"report format must be one of {', '.join(FORMATS)}, got {page_format!r}")
        self.path, self.format = Path(path), page_format
        self.written: list[Path] = []
        self.size = (round(_A4_MM[0] / 25.4 * PAGE_DPI), round(_A4_MM[1] / 25.4 * PAGE_DPI))
        self._pdf: QPdfWriter | None = None
        self._painter: QPainter | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def page(self) -> Iterator[QPainter]:
        if self.format == "pdf":
            yield self._pdf_page()
            return
        image = QImage(*self.size, QImage.Format.Format_RGB32)
        dots_per_metre = round(PAGE_DPI / 0.0254)
        image.setDotsPerMeterX(dots_per_metre)
        image.setDotsPerMeterY(dots_per_metre)
        image.fill(QColor("white"))
        painter = QPainter(image)
        try:
            yield painter
        finally:
            painter.end()
        target = self.path.with_name(f"{self.path.stem}-{len(self.written) + 1}.png")
        if not image.save(str(target)):
            raise OSError(f"{target}: could not be written")
        self.written.append(target)

    def _pdf_page(self) -> QPainter:
        if self._pdf is None:
            self._pdf = QPdfWriter(str(self.path))
            self._pdf.setResolution(PAGE_DPI)
            self._pdf.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                                QMarginsF(0, 0, 0, 0)))
            self._pdf.setCreator("PneumoViewer")
            self._pdf.setTitle(self.path.stem)
            self._painter = QPainter(self._pdf)
            self.written.append(self.path)
        else:
            self._pdf.newPage()
        assert self._painter is not None
        return self._painter

    def close(self) -> None:
        if self._painter is not None:
            self._painter.end()
            self._painter = None
            if not self.path.is_file():
                raise OSError(f"{self.path}: could not be written")


def _font(points: float, bold: bool = False) -> QFont:
    font = QFont("DejaVu Sans")
    font.setPointSizeF(points)
    font.setBold(bold)
    # No "fi"/"fl" ligatures: the PDF's text layer then holds plain letters, so a search for "specificity"
    # (or a copy and paste) finds what it reads.
    font.setFeature(QFont.Tag("liga"), 0)
    return font


def _text(painter: QPainter, rect: QRectF, text: str, points: float = 10, bold: bool = False,
          colour: QColor = _INK, flags: int = 0) -> float:
    """Draw wrapped text in `rect`; returns the height it took."""
    painter.setFont(_font(points, bold))
    painter.setPen(QPen(colour))
    wrap = int(Qt.TextFlag.TextWordWrap) | int(Qt.AlignmentFlag.AlignLeft) | int(Qt.AlignmentFlag.AlignTop) | flags
    used = painter.boundingRect(rect, wrap, text)
    painter.drawText(rect, wrap, text)
    return used.height()


def _qimage(picture: Image.Image) -> QImage:
    rgb = picture.convert("RGB")
    data = rgb.tobytes()
    image = QImage(data, rgb.width, rgb.height, rgb.width * 3, QImage.Format.Format_RGB888)
    return image.copy()  # own the pixels: `data` goes away


def _header_and_footer(painter: QPainter, size: tuple[int, int], title: str, subtitle: str, page: str) -> float:
    width, height = size
    top = float(_MARGIN)
    top += _text(painter, QRectF(_MARGIN, top, width - 2 * _MARGIN, 60), title, 16, bold=True)
    top += _text(painter, QRectF(_MARGIN, top + 4, width - 2 * _MARGIN, 60), subtitle, 8.5, colour=_GREY) + 10
    painter.setPen(QPen(_GREY, 1.5))
    painter.drawLine(_MARGIN, int(top), width - _MARGIN, int(top))
    footer = QRectF(_MARGIN, height - _MARGIN + 10, width - 2 * _MARGIN - 120, 50)
    painter.drawLine(_MARGIN, height - _MARGIN, width - _MARGIN, height - _MARGIN)
    _text(painter, footer, FOOTER, 8, colour=_GREY)
    _text(painter, QRectF(width - _MARGIN - 110, height - _MARGIN + 10, 110, 30), page, 8, colour=_GREY,
          flags=int(Qt.AlignmentFlag.AlignRight))
    return top + 16


def paint_case_page(painter: QPainter, size: tuple[int, int], report: CaseReport, picture: Image.Image | None,
                    picture_problem: str | None, page: str) -> None:
    """One case: the picture (or why there is none), the findings and facts, the lesions, status and notes."""
    width, height = size
    top = _header_and_footer(painter, size, f"Case report: {report.case_id}", report.model, page)
    side = 640
    frame = QRectF(_MARGIN, top, side, side)
    if picture is not None:
        image = _qimage(picture)
        scaled = QSizeF(image.width(), image.height()).scaled(frame.size(), Qt.AspectRatioMode.KeepAspectRatio)
        painter.drawImage(QRectF(frame.topLeft(), scaled), image)
    else:
        painter.setPen(QPen(_GREY, 1.5, Qt.PenStyle.DashLine))
        painter.drawRect(frame)
        _text(painter, frame.adjusted(20, 20, -20, -20), f"The image cannot be shown: {picture_problem}", 10)
    column = QRectF(_MARGIN + side + 30, top, width - 2 * _MARGIN - side - 30, side)
    y = column.top()
    y += _text(painter, QRectF(column.left(), y, column.width(), 40), "Study (no identifiers)", 11, bold=True) + 6
    for label, value in report.facts:
        y += _text(painter, QRectF(column.left(), y, column.width(), 60), f"{label}: {value}", 9.5) + 3
    y += 20
    y += _text(painter, QRectF(column.left(), y, column.width(), 40), "Review status", 11, bold=True) + 6
    y += _text(painter, QRectF(column.left(), y, column.width(), 80), report.status, 9.5) + 3
    y = max(frame.bottom(), y) + 30
    text_width = width - 2 * _MARGIN
    y += _text(painter, QRectF(_MARGIN, y, text_width, 40), "Findings", 12, bold=True) + 6
    for label, value in report.findings:
        y += _text(painter, QRectF(_MARGIN, y, text_width, 120), f"{label}: {value}", 10) + 4
    y += 14
    title = f"Lesions labelled on the image (from {report.lesions_from})"
    y += _text(painter, QRectF(_MARGIN, y, text_width, 40), title, 11, bold=True) + 6
    if not report.lesions:
        y += _text(painter, QRectF(_MARGIN, y, text_width, 40), "none", 10) + 4
    for lesion in report.lesions:
        line = f"{lesion.name}:  area {lesion.area_text()},  extent {lesion.extent_text()},  {lesion.side.value}"
        if lesion.side.value in ("left", "right"):
            line += " lung"
        y += _text(painter, QRectF(_MARGIN + 10, y, text_width - 10, 40), line, 10) + 3
    if report.notes:
        y += 14
        y += _text(painter, QRectF(_MARGIN, y, text_width, 40), "Notes", 11, bold=True) + 6
        for note in report.notes:
            y += _text(painter, QRectF(_MARGIN + 10, y, text_width - 10, 80), f"• {note}", 9.5, colour=_GREY) + 3


def write_case_reports(path: Path, page_format: str, count: int,
                       pages: Iterable[tuple[CaseReport, Image.Image | None, str | None]]) -> list[Path]:
    """One page per (report, picture, why there is no picture), `count` of them, made one at a time as
    they are painted (a folder's pictures never all in memory); the files written."""
    writer = PageWriter(path, page_format)
    try:
        for number, (report, picture, problem) in enumerate(pages, start=1):
            with writer.page() as painter:
                paint_case_page(painter, writer.size, report, picture, problem, f"page {number} of {count}")
    finally:
        writer.close()
    return writer.written


def write_worklist_report(path: Path, page_format: str, title: str, subtitle: str, rows: Sequence[WorklistRow],
                          thumbnails: Sequence[Image.Image | None], notes: Sequence[str]) -> list[Path]:
    """The cases in triage order, a thumbnail and a line each, `_ROWS_PER_PAGE` a page; then the notes."""
    writer = PageWriter(path, page_format)
    chunks = [list(range(start, min(start + _ROWS_PER_PAGE, len(rows)))) for start in range(0, len(rows),
                                                                                              _ROWS_PER_PAGE)]
    chunks = chunks or [[]]
    try:
        for page_number, chunk in enumerate(chunks, start=1):
            with writer.page() as painter:
                width = writer.size[0]
                top = _header_and_footer(painter, writer.size, title, subtitle,
                                         f"page {page_number} of {len(chunks)}")
                columns = (("#", 40), ("", _THUMBNAIL + 16), ("Case", 150), ("Status", 150), ("AI score", 110),
                           ("AI call", 260), ("Lesions", width - 2 * _MARGIN - 876))
                x = float(_MARGIN)
                for heading, column_width in columns:
                    _text(painter, QRectF(x, top, column_width, 30), heading, 9.5, bold=True)
                    x += column_width
                y = top + 34
                for index in chunk:
                    row = rows[index]
                    x = float(_MARGIN)
                    values = (str(row.rank), None, row.case_id, row.status, row.score, row.call, row.lesions)
                    for (_, column_width), value in zip(columns, values, strict=True):
                        if value is None:
                            thumbnail = thumbnails[index]
                            if thumbnail is not None:
                                painter.drawImage(QRectF(x, y, _THUMBNAIL, _THUMBNAIL), _qimage(thumbnail))
                            else:
                                _text(painter, QRectF(x, y, _THUMBNAIL, _THUMBNAIL), "no image", 8, colour=_GREY)
                        else:
                            _text(painter, QRectF(x, y + 4, column_width - 8, _THUMBNAIL), value, 9)
                        x += column_width
                    y += _THUMBNAIL + 14
                if not chunk:
                    y += _text(painter, QRectF(_MARGIN, y, width - 2 * _MARGIN, 40), "No case could be read.", 10)
                if page_number == len(chunks) and notes:
                    y += 20
                    y += _text(painter, QRectF(_MARGIN, y, width - 2 * _MARGIN, 40), "Notes", 11, bold=True) + 6
                    for note in notes:
                        y += _text(painter, QRectF(_MARGIN + 10, y, width - 2 * _MARGIN - 10, 200), f"• {note}", 9,
                                   colour=_GREY) + 3
    finally:
        writer.close()
    return writer.written
