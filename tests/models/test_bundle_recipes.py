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
    went_on = {a[a.index("--init-from") + 1].rsplit("/", 1)[0] for _, a in steps
               if "--init-from" in a}  # earlier stages that a later step goes on from
    trained = {a[a.index("--out") + 1] for _, a in steps if a[0] == "train"} - went_on
    rule = {t for t in trained if "/rule/" in t}  # the validation rule's candidates (emb)
    assert {str(tmp_path / n) for n in built} == trained - rule
    if recipe == "emb":  # held out of training and of the rule; the chosen pair is a candidate
        train = [a for _, a in steps if a[0] == "train"]
        emb_held_out = ("slt", "kokoro-blend", "/eval/", "/val/", "eval/ru")
        assert all(h not in " ".join(a) for a in train for h in emb_held_out)
        final = next(a for w, a in steps if w == "train commands-emb")
        assert (bundle.EMB_ARCH, bundle.EMB_SOURCES) in bundle.EMB_RULE
        assert final[final.index("--sources") + 1] == bundle.EMB_SOURCES
    if recipe == "v2":  # the held-out sources never feed training
        train = [a for _, a in steps if a[0] == "train"]
        assert all("ru" not in " ".join(a) and "slt" not in " ".join(a) for a in train)
        held_out = ("kokoro-blend", "music/test", "/eval/", "/val/")
        assert all(h not in " ".join(a) for a in train for h in held_out)
        sounds = next(a for _, a in steps if a[0] == "train" and "sounds" in a)
        assert sounds[sounds.index("--music") + 1].endswith("music/train")


def test_install_copies_a_window_models_streaming_pair_and_drops_a_stale_one(
    tmp_path: Path,
) -> None:
    work, dest = tmp_path / "work", tmp_path / "bundled"
    for name, exts in (("commands-cnn", (".onnx", ".json", ".front.onnx", ".head.onnx")),
                       ("commands", (".onnx", ".json"))):
        (work / name).mkdir(parents=True)
        for ext in exts:
            (work / name / f"{name}{ext}").write_text(f"new {name}{ext}")
    dest.mkdir()
    (dest / "commands.front.onnx").write_text("stale")
    (dest / "commands-cnn.head.onnx").write_text("old")
    bundle.install_models(work, ["commands-cnn", "commands"], dest)
    assert (dest / "commands-cnn.head.onnx").read_text() == "new commands-cnn.head.onnx"
    assert (dest / "commands-cnn.front.onnx").is_file()
    assert (dest / "commands.json").read_text() == "new commands.json"
    assert not (dest / "commands.front.onnx").exists()
    with pytest.raises(FileNotFoundError, match="sounds.onnx"):
        bundle.install_models(work, ["sounds"], dest)


def test_only_picks_a_whole_step_name_alone_and_words_by_substring(tmp_path: Path) -> None:
    names = {w for w, _ in bundle.steps_v2(tmp_path)}
    picked = {w for w in names if bundle.selected(w, {"train commands"}, names)}
    assert picked == {"train commands"}
    picked = {w for w in names if bundle.selected(w, {"ru false accepts"}, names)}
    assert picked == {"commands: ru false accepts", "commands-cnn: ru false accepts"}
