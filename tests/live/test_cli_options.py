"""CLI options generated from the options dataclasses: one definition, three command lines."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from hark.cli import build_parser
from hark.live.card import SmoothingSpec, VadSpec
from hark.live.cli_options import add_fields, values
from hark.models.options import TrainOptions


def test_fields_give_flag_type_default_and_help() -> None:
    p = argparse.ArgumentParser()
    m = add_fields(p, TrainOptions, ["epochs", ("learning_rate", "--lr"), "spec_augment",
                                     "streams_per_epoch"])
    args = p.parse_args([])
    got = values(args, m)
    defaults = TrainOptions(arch="rnn", out=".")  # type: ignore[arg-type]
    assert got == {"epochs": defaults.epochs, "learning_rate": defaults.learning_rate,
                   "spec_augment": True}
    args = p.parse_args(["--epochs", "3", "--lr", "0.01", "--no-spec-augment",
                         "--streams-per-epoch", "7"])
    assert values(args, m) == {"epochs": 3, "learning_rate": 0.01, "spec_augment": False,
                               "streams_per_epoch": 7}
    with pytest.raises(SystemExit):
        p.parse_args(["--epochs", "three"])
    text = p.format_help()
    assert "maximum epochs (default 30)" in text and "--no-spec-augment" in text


def test_overrides_return_only_what_was_given() -> None:
    p = argparse.ArgumentParser()
    sm = add_fields(p, SmoothingSpec, [("method", "--smoothing"), "threshold_on",
                                       "threshold_rise"], overrides=True)
    vad = add_fields(p, VadSpec, [("enabled", "--vad"), "mode"], prefix="vad-", overrides=True,
                     choices={"mode": (0, 1, 2, 3)})
    assert values(p.parse_args([]), sm) == {} and values(p.parse_args([]), vad) == {}
    args = p.parse_args(["--smoothing", "ema", "--threshold-on", "0.6", "--vad", "off",
                         "--vad-mode", "3"])
    assert values(args, sm) == {"method": "ema", "threshold_on": 0.6}
    assert values(args, vad) == {"enabled": False, "mode": 3}
    with pytest.raises(SystemExit):
        p.parse_args(["--smoothing", "mean"])  # Literal -> choices
    # the comment above a field is its help
    assert "back-date onsets" in p.format_help()


def test_the_commands_use_the_generated_options() -> None:
    parser = build_parser()
    args = parser.parse_args(["export", "m.keras", "--labels", "a,b", "--threshold-off", "0.2",
                              "--vad-hangover-ms", "200"])
    assert values(args, args.smoothing_flags) == {"threshold_off": 0.2}
    assert values(args, args.vad_flags) == {"hangover_ms": 200.0}
    args = parser.parse_args(["train", "--arch", "rnn", "--synth", "5", "--epochs", "2",
                              "--no-tune"])
    opts = dataclasses.replace(TrainOptions(arch="rnn", out="."),  # type: ignore[arg-type]
                               **values(args, args.train_flags))
    assert (opts.epochs, opts.tune, opts.seq_frames) == (2, False, 500)
