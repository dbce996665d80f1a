"""A small streaming xlsx (SpreadsheetML) writer: rows go straight into the zip, memory stays flat.

Why our own: xlsxwriter's per-cell code was 90% of the ledger export time. Here a row becomes one string
of XML, text is written inline (``t="inlineStr"``, no shared-string table to keep in memory) and each
worksheet is deflated into its zip entry as it is written. A zip file takes one open entry at a time, so
the first sheet that writes goes straight into the zip; a sheet that writes while another one is open
(per-department sheets filled in step with the ledger) spools to an unnamed temporary file, copied into
the zip when the book closes. Zip entry order is free: workbook.xml alone decides the tab order, so a
sheet added first may be written last.

Only what the ledger needs: text, numbers, booleans; cell styles (font, fill, border, number format,
alignment); column widths; frozen header rows; an autofilter.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

MAX_ROWS = 1_048_576
MAX_TEXT = 32_767  # UTF-16 units Excel holds in a cell
_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_NS_R = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Text that needs more than being pasted between <t> tags: markup, characters XML 1.0 forbids (crawled
# text carries them), Excel's own _xHHHH_ escapes (taken literally they would turn into other characters),
# and edge whitespace (dropped unless marked to be preserved).
_SPECIAL = re.compile(r"[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]|_x[0-9A-Fa-f]{4}_|^\s|\s$")
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_EXCEL_ESCAPE = re.compile(r"_(x[0-9A-Fa-f]{4}_)")
# Rows are joined and written in batches: one deflate call per row would cost more than the row.
_BATCH = 512


class _Blank:
    def __repr__(self) -> str:
        return "BLANK"


BLANK = _Blank()
"""A cell value: an empty cell that is written anyway, to show its style (None writes no cell)."""


def column_letter(col: int) -> str:
    """A, B, ..., Z, AA, ... for the 0-based column ``col``."""
    letters = ""
    col += 1
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cell_ref(row: int, col: int, absolute: bool = False) -> str:
    """The A1 reference of the 0-based ``row``, ``col``."""
    mark = "$" if absolute else ""
    return f"{mark}{column_letter(col)}{mark}{row + 1}"


def _text(text: str) -> str:
    """The <t> element of ``text``: cut to what Excel holds, made legal XML, edge spaces kept."""
    if len(text) > MAX_TEXT // 2:
        # Excel counts UTF-16 units: a character beyond the BMP (an emoji) takes two.
        units = text.encode("utf-16-le")[: 2 * MAX_TEXT]
        text = units.decode("utf-16-le", errors="ignore")  # never half a surrogate pair
    if _SPECIAL.search(text) is None:
        return f"<t>{text}</t>"
    text = escape(_EXCEL_ESCAPE.sub(r"_x005F_\1", _ILLEGAL.sub("", text)))
    if text[:1].isspace() or text[-1:].isspace():
        return f'<t xml:space="preserve">{text}</t>'
    return f"<t>{text}</t>"


@dataclass(frozen=True)
class Style:
    """A cell format. Colours are ``RRGGBB`` (``#`` allowed); ``border`` is ``all`` or ``top`` (thin lines)."""

    bold: bool = False
    size: float | None = None
    color: str | None = None
    fill: str | None = None
    border: str | None = None
    num_format: str | None = None
    center: bool = False
    wrap: bool = False


class _Styles:
    """The cell formats of a book, numbered as cellXfs; 0 is the default."""

    def __init__(self) -> None:
        self.xfs: list[Style] = [Style()]
        self.ids: dict[Style, int] = {Style(): 0}

    def add(self, style: Style) -> int:
        if style.border not in (None, "all", "top"):
            raise ValueError(f"style border: {style.border!r} is not 'all' or 'top'")
        for key in ("color", "fill"):
            value = getattr(style, key)
            if value is not None and not re.fullmatch(r"#?[0-9A-Fa-f]{6}", value):
                raise ValueError(f"style {key}: {value!r} is not an RRGGBB colour")
            if value is not None:
                style = replace(style, **{key: value.lstrip("#").upper()})
        if style not in self.ids:
            self.ids[style] = len(self.xfs)
            self.xfs.append(style)
        return self.ids[style]

    def xml(self) -> str:
        fonts: dict[tuple, int] = {}
        fills: dict[str | None, int] = {None: 0}  # 0 and 1 are reserved by the format (none, gray125)
        borders: dict[str | None, int] = {None: 0}
        formats: dict[str, int] = {}
        xfs = []
        for s in self.xfs:
            font = fonts.setdefault((s.bold, s.size or 11, s.color), len(fonts))
            fill = fills.setdefault(s.fill, len(fills) + 1)
            border = borders.setdefault(s.border, len(borders))
            fmt = formats.setdefault(s.num_format, 164 + len(formats)) if s.num_format else 0
            align = ""
            if s.center or s.wrap:
                center = ' horizontal="center" vertical="center"' if s.center else ""
                wrap = ' wrapText="1"' if s.wrap else ""
                align = f"<alignment{center}{wrap}/>"
            applied = "".join(
                f' apply{name}="1"'
                for name, used in (("Font", font), ("Fill", fill), ("Border", border), ("NumberFormat", fmt))
                if used
            )
            xfs.append(
                f'<xf numFmtId="{fmt}" fontId="{font}" fillId="{fill}" borderId="{border}" xfId="0"{applied}'
                + (f' applyAlignment="1">{align}</xf>' if align else "/>")
            )
        font_xml = "".join(
            f'<font>{"<b/>" if bold else ""}<sz val="{size:g}"/>'
            + (f'<color rgb="FF{color}"/>' if color else "")
            + '<name val="Calibri"/><family val="2"/></font>'
            for bold, size, color in fonts
        )
        fill_xml = '<fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
        fill_xml += "".join(
            f'<fill><patternFill patternType="solid"><fgColor rgb="FF{rgb}"/><bgColor indexed="64"/></patternFill>'
            "</fill>"
            for rgb in fills
            if rgb
        )
        sides = {None: (), "all": ("left", "right", "top", "bottom"), "top": ("top",)}
        border_xml = "".join(
            "<border>"
            + "".join(
                f'<{side} style="thin"><color auto="1"/></{side}>' if side in sides[b] else f"<{side}/>"
                for side in ("left", "right", "top", "bottom")
            )
            + "<diagonal/></border>"
            for b in borders
        )
        fmt_xml = "".join(f'<numFmt numFmtId="{i}" formatCode={quoteattr(code)}/>' for code, i in formats.items())
        return (
            f"{_HEAD}<styleSheet {_NS}>"
            + (f'<numFmts count="{len(formats)}">{fmt_xml}</numFmts>' if formats else "")
            + f'<fonts count="{len(fonts)}">{font_xml}</fonts>'
            + f'<fills count="{len(fills) + 1}">{fill_xml}</fills>'
            + f'<borders count="{len(borders)}">{border_xml}</borders>'
            + '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
            + f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
            + '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
            + "</styleSheet>"
        )


class StreamSheet:
    """One worksheet, written a row at a time from the top; made by ``XlsxBook.add_sheet``."""

    def __init__(
        self,
        book: XlsxBook,
        number: int,
        name: str,
        widths: Sequence[float],
        freeze_rows: int,
        *,
        landscape: bool = False,
        fit_width: bool = False,
        title_rows: tuple[int, int] | None = None,
    ) -> None:
        self.book = book
        self.landscape = landscape
        self.fit_width = fit_width
        self.title_rows = title_rows  # 1-based first and last row printed at the top of every page
        self.number = number
        self.name = name
        self.next_row = 0  # 0-based index of the row the next write_row fills
        self.autofilter: str | None = None
        self.closed = False
        self._sink: IO[bytes] | None = None
        self._spooled = False
        self._refs: list[str] = []
        self._buffer: list[str] = []
        view = ' tabSelected="1"' if number == 1 else ""
        pane = ""
        if freeze_rows:
            top = f"A{freeze_rows + 1}"
            pane = (
                f'<pane ySplit="{freeze_rows}" topLeftCell="{top}" activePane="bottomLeft" state="frozen"/>'
                f'<selection pane="bottomLeft" activeCell="{top}" sqref="{top}"/>'
            )
        cols = "".join(
            # Excel's stored width adds the cell padding to the characters people asked for.
            f'<col min="{i}" max="{i}" width="{int((int(w * 7 + 0.5) + 5) / 7 * 256) / 256}" customWidth="1"/>'
            for i, w in enumerate(widths, start=1)
        )
        # Fit to the page width, as many pages down as it takes (fitToHeight 0 = automatic).
        sheet_pr = '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>' if fit_width else ""
        self._buffer.append(
            f"{_HEAD}<worksheet {_NS} {_NS_R}>{sheet_pr}<sheetViews>"
            f'<sheetView workbookViewId="0"{view}>{pane}</sheetView>'
            f'</sheetViews><sheetFormatPr defaultRowHeight="15"/>{f"<cols>{cols}</cols>" if cols else ""}<sheetData>'
        )

    @property
    def part(self) -> str:
        return f"xl/worksheets/sheet{self.number}.xml"

    def write_row(self, values: Sequence[object], styles: Sequence[int] = ()) -> None:
        """Append a row: str, int, float or bool cells; None skips a cell, BLANK writes an empty styled one.

        ``styles`` are ids from ``XlsxBook.style``, one per value (missing ones mean the default).
        """
        if self.closed:
            raise ValueError(f"sheet {self.name}: already closed")
        r = self.next_row + 1
        if r > MAX_ROWS:
            raise ValueError(f"sheet {self.name}: more than {MAX_ROWS} rows")
        self.next_row = r
        refs = self._refs
        while len(refs) < len(values):
            refs.append(column_letter(len(refs)))
        attrs, special = self.book._style_attrs, _SPECIAL.search
        if len(styles) < len(values):
            styles = (*styles, *(0,) * (len(values) - len(styles)))
        out = [f'<row r="{r}">']
        # Cells are told apart by exact class (cheaper than isinstance on this hot path); mypy cannot
        # follow that narrowing, so the cell is typed as whatever it holds.
        value: Any
        for ref, value, style in zip(refs, values, styles, strict=False):
            cls = value.__class__
            if cls is str:
                if value:
                    # The common case, plain text of a sane length, costs one regex scan and no call.
                    text = f"<t>{value}</t>" if special(value) is None and len(value) <= MAX_TEXT // 2 else _text(value)
                    out.append(f'<c r="{ref}{r}"{attrs[style]} t="inlineStr"><is>{text}</is></c>')
            elif value is None:
                continue
            elif value is BLANK:
                out.append(f'<c r="{ref}{r}"{attrs[style]}/>')
            elif cls is bool:
                out.append(f'<c r="{ref}{r}"{attrs[style]} t="b"><v>{int(value)}</v></c>')
            elif cls is int or (cls is float and value - value == 0):  # finite: inf - inf and nan are nan
                out.append(f'<c r="{ref}{r}"{attrs[style]}><v>{value!r}</v></c>')
            else:
                raise TypeError(f"sheet {self.name} row {r}: cannot write {value!r} ({cls.__name__})")
        out.append("</row>")
        buffer = self._buffer
        buffer.append("".join(out))
        if len(buffer) >= _BATCH:
            self._flush()

    def skip(self, rows: int = 1) -> None:
        """Leave ``rows`` empty rows."""
        self.next_row += rows

    def set_autofilter(self, last_row: int, last_col: int, first_row: int = 0, first_col: int = 0) -> None:
        """Filter buttons on ``first_row`` over the range down to ``last_row`` (0-based, inclusive)."""
        self.autofilter = f"{cell_ref(first_row, first_col)}:{cell_ref(max(last_row, first_row), last_col)}"

    def close(self) -> None:
        """Finish the sheet; no rows may follow."""
        if self.closed:
            return
        tail = f'<autoFilter ref="{self.autofilter}"/>' if self.autofilter else ""
        margins = '<pageMargins left="0.4" right="0.4" top="0.6" bottom="0.6" header="0.3" footer="0.3"/>'
        setup = ""
        if self.landscape or self.fit_width:
            # paperSize 9 is A4; a page number footer helps when the printed pages get shuffled.
            fit = ' fitToWidth="1" fitToHeight="0"' if self.fit_width else ""
            orientation = "landscape" if self.landscape else "portrait"
            setup = (
                f'<pageSetup paperSize="9" orientation="{orientation}"{fit}/>'
                "<headerFooter><oddFooter>&amp;C第 &amp;P 页，共 &amp;N 页</oddFooter></headerFooter>"
            )
        options = '<printOptions horizontalCentered="1"/>' if self.fit_width else ""
        self._buffer.append(f"</sheetData>{tail}{options}{margins}{setup}</worksheet>")
        self._flush()
        self.closed = True
        if not self._spooled:
            self._release()

    def _flush(self) -> None:
        if self._sink is None:
            self._sink, self._spooled = self.book._sink_for(self)
        self._sink.write("".join(self._buffer).encode("utf-8"))
        self._buffer.clear()

    def _release(self) -> None:
        if self._sink is not None:
            sink, self._sink = self._sink, None
            sink.close()
        if self.book._writing is self:
            self.book._writing = None


class XlsxBook:
    """An xlsx file written as a stream. Use as a context manager: on an error, the file is left unfinished."""

    def __init__(self, path: Path, *, spool_dir: Path | None = None, compresslevel: int | None = None) -> None:
        self.path = Path(path)
        self.spool_dir = spool_dir or self.path.parent
        self.sheets: list[StreamSheet] = []
        self._styles = _Styles()
        self._style_attrs: list[str] = [""]
        self._zip = zipfile.ZipFile(self.path, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel)
        self._writing: StreamSheet | None = None  # the sheet whose zip entry is open

    def style(self, style: Style) -> int:
        """The id of ``style`` for ``StreamSheet.write_row``."""
        sid = self._styles.add(style)
        if sid == len(self._style_attrs):
            self._style_attrs.append(f' s="{sid}"')
        return sid

    def add_sheet(
        self,
        name: str,
        *,
        widths: Sequence[float] = (),
        freeze_rows: int = 0,
        landscape: bool = False,
        fit_width: bool = False,
        title_rows: tuple[int, int] | None = None,
    ) -> StreamSheet:
        """A new sheet, shown after those added before it (the first one is the active tab).

        Printing: ``landscape`` A4, ``fit_width`` to one page wide, ``title_rows`` (first, last; 1-based)
        repeated at the top of every printed page.
        """
        if len(name) > 31 or not name.strip() or re.search(r"[\[\]:*?/\\]", name):
            raise ValueError(f"sheet name {name!r}: Excel needs 1-31 characters, none of []:*?/\\")
        if any(s.name.lower() == name.lower() for s in self.sheets):
            raise ValueError(f"sheet name {name!r}: already in the book")
        sheet = StreamSheet(
            self,
            len(self.sheets) + 1,
            name,
            widths,
            freeze_rows,
            landscape=landscape,
            fit_width=fit_width,
            title_rows=title_rows,
        )
        self.sheets.append(sheet)
        return sheet

    def _sink_for(self, sheet: StreamSheet) -> tuple[IO[bytes], bool]:
        if self._writing is None:
            self._writing = sheet
            return self._zip.open(sheet.part, "w"), False
        # Deleted on close, and unnamed from the start on Linux: nothing is left behind on a crash.
        return tempfile.TemporaryFile(dir=self.spool_dir, prefix=".xlsx-"), True

    def close(self) -> None:
        """Finish every sheet and write the workbook parts."""
        if self._zip.fp is None:
            return
        for sheet in self.sheets:
            if not sheet._spooled:
                sheet.close()
        for sheet in self.sheets:
            sheet.close()
            if sheet._spooled and sheet._sink is not None:
                spool, sheet._sink = sheet._sink, None
                with spool, self._zip.open(sheet.part, "w") as entry:
                    spool.seek(0)
                    shutil.copyfileobj(spool, entry, 1 << 20)
        self._write_parts()
        self._zip.close()

    def abort(self) -> None:
        """Close everything without finishing the file (the caller deletes it)."""
        for sheet in self.sheets:
            sheet._release()
        if self._zip.fp is not None:
            self._zip.close()

    def __enter__(self) -> XlsxBook:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()
            return
        try:
            self.close()
        except BaseException:
            self.abort()
            raise

    def _write_parts(self) -> None:
        n = len(self.sheets)
        sheets = "".join(
            f'<sheet name={quoteattr(s.name)} sheetId="{s.number}" r:id="rId{s.number}"/>' for s in self.sheets
        )
        # Excel keeps each autofilter range as a hidden name too; other readers look for it there.
        names = "".join(
            f'<definedName name="_xlnm._FilterDatabase" localSheetId="{s.number - 1}" hidden="1">'
            f"{escape(_quoted(s.name))}!{_absolute(s.autofilter)}</definedName>"
            for s in self.sheets
            if s.autofilter
        ) + "".join(
            f'<definedName name="_xlnm.Print_Titles" localSheetId="{s.number - 1}">'
            f"{escape(_quoted(s.name))}!${s.title_rows[0]}:${s.title_rows[1]}</definedName>"
            for s in self.sheets
            if s.title_rows
        )
        parts = {
            "[Content_Types].xml": f'{_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.styles+xml"/>'
            + "".join(f'<Override PartName="/{s.part}" ContentType="{_CT}.worksheet+xml"/>' for s in self.sheets)
            + "</Types>",
            "_rels/.rels": f'{_HEAD}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
            "xl/_rels/workbook.xml.rels": f'{_HEAD}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            + "".join(
                f'<Relationship Id="rId{s.number}" Type="{_REL}/worksheet" Target="worksheets/sheet{s.number}.xml"/>'
                for s in self.sheets
            )
            + f'<Relationship Id="rId{n + 1}" Type="{_REL}/styles" Target="styles.xml"/></Relationships>',
            "xl/workbook.xml": f'{_HEAD}<workbook {_NS} {_NS_R}><bookViews><workbookView activeTab="0"/></bookViews>'
            f"<sheets>{sheets}</sheets>{f'<definedNames>{names}</definedNames>' if names else ''}</workbook>",
            "xl/styles.xml": self._styles.xml(),
        }
        for name, xml in parts.items():
            self._zip.writestr(name, xml.encode("utf-8"))


def _quoted(sheet_name: str) -> str:
    return "'" + sheet_name.replace("'", "''") + "'"


def _absolute(ref: str | None) -> str:
    return ":".join("$" + re.sub(r"(\d)", r"$\1", part, count=1) for part in (ref or "").split(":"))
