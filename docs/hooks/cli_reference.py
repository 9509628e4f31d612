"""MkDocs hook: the command-line reference of ``docs/cli.md``, generated from the argparse parsers at build time.

``docs/cli.md`` holds :data:`MARKER`; :func:`on_page_markdown` replaces it with ``plm-nas --help`` and then, for
every command of :data:`benchmarks.cli.COMMANDS`, the ``--help`` of the parser that
:func:`benchmarks.cli.build_parser` builds for it, the very parser the command runs with. So the reference cannot
drift from the code. Nothing is skipped: a command whose module fails to import (or whose help cannot be
formatted), a missing marker, or a build that never rendered ``cli.md`` fails the build with a message naming
what went wrong.

Registered in ``mkdocs.yml`` under ``hooks:``; ``exclude_docs`` keeps this file out of the built site. Under
``mkdocs serve`` the command modules stay imported between rebuilds: restart it to see changed options.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

MARKER = "<!-- cli-reference -->"
PAGE = "cli.md"
HELP_COLUMNS = 100  # argparse wraps help to the terminal width; a fixed width keeps the page reproducible
REPO_ROOT = Path(__file__).resolve().parents[2]

_rendered = False


@contextlib.contextmanager
def _fixed_width(columns: int):
    """Set ``COLUMNS`` (read by argparse's formatter through ``shutil.get_terminal_size``) for the duration."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def _fenced(text: str, what: str) -> str:
    if "```" in text:
        raise PluginError(f"CLI reference: the help of {what} contains a code fence (```), which would break the page")
    return f"```text\n{text.rstrip()}\n```\n"


def _top_level_help(cli) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["--help"])
    if code != 0:
        raise PluginError(f"CLI reference: 'plm-nas --help' exited with {code}")
    return out.getvalue()


def cli_reference() -> str:
    """Markdown of ``plm-nas --help`` and of every command's ``--help``; raises :class:`PluginError` on any failure."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    try:
        from benchmarks import cli
    except Exception as err:  # noqa: BLE001 - any failure to import the CLI must stop the build
        raise PluginError(f"CLI reference: benchmarks.cli failed to import: {type(err).__name__}: {err}") from err

    parts = []
    with _fixed_width(HELP_COLUMNS):
        parts.append(_fenced(_top_level_help(cli), "plm-nas"))
        for name, command in cli.COMMANDS.items():
            try:
                help_text = cli.build_parser(name, command).format_help()
            except (Exception, SystemExit) as err:  # noqa: BLE001 - name the command, never skip it
                raise PluginError(
                    f"CLI reference: command {name!r} (module {command.module}) could not build its parser: "
                    f"{type(err).__name__}: {err}") from err
            parts.append(f"### plm-nas {name}\n\n" + _fenced(help_text, f"plm-nas {name}"))
    return "\n".join(parts)


def on_pre_build(config, **kwargs) -> None:
    global _rendered
    _rendered = False


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    global _rendered
    if page.file.src_uri != PAGE:
        return markdown
    if markdown.count(MARKER) != 1:
        raise PluginError(f"CLI reference: {PAGE} must hold the marker {MARKER} exactly once "
                          f"(found {markdown.count(MARKER)})")
    _rendered = True
    return markdown.replace(MARKER, cli_reference())


def on_post_build(config, **kwargs) -> None:
    if not _rendered:
        raise PluginError(f"CLI reference: {PAGE} was not rendered, so the command-line reference is missing")
