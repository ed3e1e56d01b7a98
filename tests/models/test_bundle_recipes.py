"""Every step of every bundle recipe is a command `hark` accepts (a typo fails here, not later)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hark.cli import build_parser
from hark.models import bundle


@pytest.mark.parametrize("recipe", sorted(bundle.RECIPES))
def test_recipe_steps_parse(recipe: str, tmp_path: Path) -> None:
    make_steps, built = bundle.RECIPES[recipe]
    parser = build_parser()
    steps = make_steps(tmp_path)
    assert steps
    for what, args in steps:
        ns = parser.parse_args(args)
        assert callable(ns.func), what
    trained = {a[a.index("--out") + 1] for _, a in steps if a[0] == "train"}
    assert {str(tmp_path / n) for n in built} == trained
    if recipe == "v2":  # the held-out sources never feed training
        train = [a for _, a in steps if a[0] == "train"]
        assert all("ru" not in " ".join(a) and "slt" not in " ".join(a) for a in train)
