"""The documentation site: the CLI page generated from argparse covers every command, every
page in the nav exists, and (when mkdocs is installed) the site builds with --strict."""

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hsd.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _hook():
    spec = importlib.util.spec_from_file_location(
        "cli_reference", ROOT / "docs/hooks/cli_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands(parser, words):
    yield " ".join(words)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _commands(child, [*words, name])


def test_cli_page_has_every_command_and_its_options():
    text = _hook().cli_markdown()
    commands = list(_commands(build_parser(), ["hsd"]))
    assert {"hsd teacher", "hsd distill", "hsd data show", "hsd export onnx"} <= set(commands)
    for command in commands:
        assert f"## `{command}`" in text
    assert "--set" in text and "--resume" in text and "--exit-confidence" in text


def test_cli_page_replaces_the_marker_only():
    hook = _hook()
    assert hook.on_page_markdown("plain page", None, None, None) == "plain page"
    out = hook.on_page_markdown(f"# CLI\n\n{hook.MARKER}\n", None, None, None)
    assert hook.MARKER not in out and "## `hsd stream`" in out


def _nav_files(items):
    for item in items:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            yield from _nav_files(value)
        else:
            yield value


def test_every_nav_page_exists():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = list(_nav_files(config["nav"]))
    assert "cli.md" in pages and "benchmarks.md" in pages
    missing = [p for p in pages if not (ROOT / "docs" / p).is_file()]
    assert not missing


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="mkdocs not installed (extra 'docs')"
)
@pytest.mark.skipif(
    importlib.util.find_spec("material") is None, reason="mkdocs-material not installed"
)
def test_site_builds_strict(tmp_path):
    exe = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or "mkdocs"
    done = subprocess.run(
        [exe, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    html = (tmp_path / "site/reference/models/index.html").read_text()
    assert "convert_to_snn" in html  # the API reference was generated from the docstrings
    assert "hsd-export-onnx" in (tmp_path / "site/cli/index.html").read_text()


def test_your_network_tutorial_code_runs(recwarn):
    """The two code blocks of the "your own network" tutorial, run as one script."""
    import re

    text = (ROOT / "docs/tutorials/your-network.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    scope: dict = {}
    exec(compile("\n".join(blocks), "your-network.md", "exec"), scope)
    assert tuple(scope["o"].shape) == (2, 4, 10)  # [T, B, classes]
    assert scope["loss"].ndim == 0 and float(scope["loss"].detach()) > 0
    assert not [w for w in recwarn if "NOT checked" in str(w.message)]  # conversion probed
