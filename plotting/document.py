"""Report blocks (heading, paragraph, table, image) rendered to Markdown and HTML, tables also to LaTeX (booktabs)."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

DASH = "–"
LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 "±": r"$\pm$", DASH: "--"}


def format_mean_se(mean: float, se: float, digits: int = 3, scale: float = 1.0) -> str:
    """``mean ± se`` with a dash for a missing standard error (single seed) or a missing mean."""
    if not np.isfinite(mean):
        return DASH
    se_text = f"{scale * se:.{digits}f}" if np.isfinite(se) else DASH
    return f"{scale * mean:.{digits}f} ± {se_text}"


def latex_escape(text: str) -> str:
    """Text as LaTeX typesets it literally (``±`` as ``$\\pm$``, the en dash as ``--``)."""
    return "".join(LATEX_SPECIAL.get(char, char) for char in text)


@dataclass
class Cell:
    text: str
    bold: bool = False


@dataclass
class Table:
    header: list[str]
    rows: list[list[Cell]]

    def to_markdown(self) -> str:
        def fmt(cell: Cell) -> str:
            text = cell.text.replace("|", "\\|")
            return f"**{text}**" if cell.bold else text

        lines = ["| " + " | ".join(self.header) + " |", "|" + "|".join("---" for _ in self.header) + "|"]
        lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def to_html(self) -> str:
        def fmt(cell: Cell) -> str:
            text = html.escape(cell.text)
            return f"<td><b>{text}</b></td>" if cell.bold else f"<td>{text}</td>"

        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(fmt(c) for c in row) + "</tr>\n" for row in self.rows)
        return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"

    def to_latex(self, label_columns: int = 1) -> str:
        """A booktabs ``tabular`` (the first ``label_columns`` left-aligned, the rest right-aligned), to paste
        into a paper that loads ``booktabs``."""
        def fmt(cell: Cell) -> str:
            text = latex_escape(cell.text)
            return rf"\textbf{{{text}}}" if cell.bold else text

        align = "l" * label_columns + "r" * (len(self.header) - label_columns)
        lines = [rf"\begin{{tabular}}{{{align}}}", r"\toprule",
                 " & ".join(latex_escape(h) for h in self.header) + r" \\", r"\midrule"]
        lines += [" & ".join(fmt(c) for c in row) + r" \\" for row in self.rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines) + "\n"


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str
    note: bool = False


@dataclass
class Image:
    png: str  # relative to the report
    pdf: str
    caption: str


Block = Heading | Paragraph | Table | Image


def _markdown(blocks: Sequence[Block]) -> str:
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append("#" * block.level + " " + block.text)
        elif isinstance(block, Paragraph):
            out.append(f"> Note: {block.text}" if block.note else block.text)
        elif isinstance(block, Table):
            out.append(block.to_markdown())
        else:
            out.append(f"![{block.caption}]({block.png})\n\n*{block.caption}* ([PDF]({block.pdf}))")
    return "\n\n".join(out) + "\n"


_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #bbb;padding:3px 8px;"
    "text-align:left}th{background:#eee}img{max-width:100%;border:1px solid #ddd}"
    ".note{background:#fff7e0;border-left:4px solid #e0a800;padding:4px 8px}figcaption{font-style:italic}"
)


def _html(blocks: Sequence[Block], title: str) -> str:
    out = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{_CSS}</style></head><body>"]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            text = html.escape(block.text)
            out.append(f"<p class='note'>Note: {text}</p>" if block.note else f"<p>{text}</p>")
        elif isinstance(block, Table):
            out.append(block.to_html())
        else:
            out.append(
                f"<figure><img src='{html.escape(block.png)}' alt='{html.escape(block.caption)}'>"
                f"<figcaption>{html.escape(block.caption)} (<a href='{html.escape(block.pdf)}'>PDF</a>)"
                "</figcaption></figure>"
            )
    out.append("</body></html>\n")
    return "\n".join(out)


@dataclass
class Section:
    """A titled part of a report that a caller adds through :func:`plotting.report.write_report`."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    def to_blocks(self) -> list[Block]:
        return [Heading(self.title), *self.blocks]


def to_markdown(blocks: Sequence[Block]) -> str:
    """The blocks as one Markdown document."""
    return _markdown(blocks)


def to_html(blocks: Sequence[Block], title: str) -> str:
    """The blocks as one HTML page."""
    return _html(blocks, title)
