"""The rooms stay clean: checked on the source, so a regression is a failing test, not a review."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_assess_does_not_import_training() -> None:
    """models.training calls models.assess; the reverse import would close a circle."""
    assert "hark.models.training" not in _imports(ROOT / "models" / "assess.py")


def test_no_fallback_exporter() -> None:
    """Training exports through hark.export.convert, the code `hark export` runs; nothing else."""
    imports = _imports(ROOT / "models" / "exporting.py")
    assert "tf2onnx" not in imports and "hark.export.convert" in imports


def test_the_cli_root_holds_only_the_entry_point_and_the_api() -> None:
    """hark/ holds no subpackage: live/, export/, models/ and bench/ are mapped in by pyproject's
    package-dir (tests/test_packaging.py), never linked."""
    hark = ROOT / "hark"
    names = {p.name for p in hark.iterdir() if p.name != "__pycache__"}
    assert names <= {"__init__.py", "cli.py", "py.typed", "api.py"}, names


def test_batched_engine_uses_no_private_member_of_another_object() -> None:
    """live.batched drives Frontend, VadGate and Smoother through their public methods only."""
    tree = ast.parse((ROOT / "live" / "batched.py").read_text())
    private = [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]
    assert private == []
