"""MkDocs hook: ``<!-- hsd-cli -->`` in a page becomes the ``--help`` of every ``hsd`` command,
generated from :func:`hsd.cli.build_parser` at build time (the CLI page cannot drift)."""

from __future__ import annotations

import argparse
import os

MARKER = "<!-- hsd-cli -->"


def _walk(parser: argparse.ArgumentParser, words: list[str]) -> list[tuple[str, str]]:
    out = [(" ".join(words), parser.format_help())]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                out += _walk(child, [*words, name])
    return out


def cli_markdown() -> str:
    from hsd.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: a fixed width here
    parts = []
    for command, text in _walk(build_parser(), ["hsd"]):
        parts.append(f"## `{command}`\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, cli_markdown())
    return markdown
