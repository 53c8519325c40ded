"""The layering the README describes holds: scripts/check_layers.py finds no
import from a higher layer and no import cycle (CI also runs it directly)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_module_imports_from_a_higher_layer_or_in_a_cycle():
    result = subprocess.run(
        [sys.executable, "scripts/check_layers.py"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout


def test_the_check_catches_an_upward_import(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_layers", ROOT / "scripts" / "check_layers.py")
    check_layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_layers)
    module = tmp_path / "core" / "bad.py"
    module.parent.mkdir()
    module.write_text("def f():\n    from gateway import pipeline\n")
    modules = {"core.bad": module, "gateway.pipeline": ROOT / "gateway" / "pipeline.py"}
    assert check_layers.imports_of("core.bad", module, modules) == [(2, "gateway.pipeline")]
    assert check_layers.cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
