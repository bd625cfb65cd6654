"""The house rule: lower layers never import upper ones; ``hsd.events`` never imports torch."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "hsd"
# demo sits above bench: hsd demo runs its comparison with hsd.bench.runner (issue 13)
ORDER = ["errors", "events", "data", "models", "train", "eval", "pipeline", "bench", "demo", "cli"]
RANK = {name: i for i, name in enumerate(ORDER)}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "hsd" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in RANK else None


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_upward_imports(path):
    rel = path.relative_to(SRC)
    own = _layer("hsd." + ".".join(rel.with_suffix("").parts))
    if own is None:
        return
    for module in _imports(path):
        other = _layer(module)
        if other is not None and other != "errors":
            assert RANK[other] <= RANK[own], f"{rel} ({own}) imports {module} ({other})"
    if own == "events":
        assert not any(m.split(".")[0] == "torch" for m in _imports(path)), f"{rel} imports torch"


def test_importing_events_loads_no_torch():
    code = (
        "import sys, hsd.events, hsd.events.formats, hsd.events.info; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
