"""After training: choose the card's defaults on validation data, then score on test data.

Validation streams (never test) pick the VAD settings and smoothing written into the card
(models.tuning); test streams and clips from held-out speakers are then scored through the live
engine with the code `hark eval` runs (models.evaluation), reports go to OUT/report/ and the
figures into the card. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hark.models.datasets import load_clips, only_unknown, speech_pool, speech_streams, sub_seed

Log = Callable[[str], None]


class AssessOptions(Protocol):
    """What assessment reads of the training options (training's TrainOptions has it all).

    A protocol, not an import: models.training calls into this module, so this module must not
    import models.training (no circle).
    """

    @property
    def out(self) -> Path: ...
    @property
    def seed(self) -> int: ...
    @property
    def tune(self) -> bool: ...
    @property
    def tune_streams(self) -> int: ...
    @property
    def test_streams(self) -> int: ...
    @property
    def test_stream_s(self) -> float: ...
    @property
    def model_name(self) -> str: ...


# ---- clip models ----------------------------------------------------------------------------
def clip_model(
    opts: AssessOptions, onnx_path: Path, tree: Path, data: Any, log: Log
) -> dict[str, Any]:
    """A window model: tune on validation word streams, then test streams and test clips."""
    model = speech_model_tuned(opts, onnx_path, data, log)
    evaluation: dict[str, Any] = {}
    if opts.tune:
        evaluation["test_streams"] = speech_stream_eval(opts, model, tree, opts.out / "eval", log)
    evaluation["test_clips"] = score_test_clips(opts, model, tree, log, "")
    return evaluation


def speech_model_tuned(opts: AssessOptions, onnx_path: Path, data: Any, log: Log) -> Any:
    """The exported speech model, reloaded after tuning its card's VAD + smoothing (opts.tune)."""
    from hark.live.model import OnnxModel

    model = OnnxModel.load(onnx_path)
    if not opts.tune:
        return model
    pos, neg = speech_val_streams(opts, model.card.sample_rate, data, log)
    tune_into_card(model, onnx_path, pos, neg, log)
    return OnnxModel.load(onnx_path)


def score_test_clips(
    opts: AssessOptions, model: Any, tree: Path, log: Log, how: str
) -> dict[str, Any]:
    """Score the test clips of `tree`; write the report (text, JSON, PNG); the card's figures."""
    from hark.models.evaluation import evaluate_clips
    from hark.models.reports import write_classification

    res = evaluate_clips(model, tree, seed=opts.seed)
    write_classification(res.report, opts.out / "report" / "test_clips",
                         f"{opts.model_name} on {tree} ({res.split}{how})")
    log(res.report.format())
    return {"accuracy": round(res.report.accuracy, 4), "n": res.report.n,
            "macro_f1": round(res.report.macro_f1, 4), "data": str(tree)}


# ---- shared: validation streams, tuning, test streams -------------------------------------------
def speech_val_streams(opts: AssessOptions, sr: int, data: Any, log: Log) -> tuple[list, list]:
    """Validation streams at the model rate: ([(audio, truth)], [audio of unknown words only])."""
    from hark.models.synth import command_truth

    if data.sample_rate != 16000:  # streams are built at 16 kHz (the CNN's clips are at 8 kHz)
        data = load_clips(data.source.root, 16000, 1.0, seed=opts.seed, splits=("validation",))
    val_pool = speech_pool(data, "validation")
    pos_streams = speech_streams(val_pool, opts.tune_streams, seed=sub_seed(opts.seed, 4, 0))
    unknown = only_unknown(val_pool)
    n_neg = max(2, opts.tune_streams // 2)
    neg_streams = speech_streams(unknown, n_neg, seed=sub_seed(opts.seed, 5, 0)) if unknown else []
    pos = [(_at_rate(s.audio, sr), command_truth(s).events) for s in pos_streams]
    neg = [_at_rate(s.audio, sr) for s in neg_streams]
    log(f"validation streams for VAD and smoothing: {len(pos)} with words, {len(neg)} "
        "unknown-only")
    return pos, neg


def _at_rate(audio: np.ndarray, sr: int) -> np.ndarray:
    from hark.models.data.audio import resample

    return audio if sr == 16000 else resample(audio, 16000, sr)


def tune_into_card(model: Any, onnx_path: Path, pos: list, neg: list, log: Log,
                   speech_gate: bool = True) -> None:
    """Choose VAD settings (gated models) and smoothing on validation; write them to the card.

    speech_gate False: the gate stays off (a speech VAD would hide claps, knocks and beeps).
    """
    from hark.live.card import load_card
    from hark.models.tuning import VAD_CANDIDATES, choose_gate

    candidates = VAD_CANDIDATES if speech_gate else \
        tuple(c for c in VAD_CANDIDATES if c.get("enabled") is False)
    choice = choose_gate(model, pos, neg, candidates=candidates, log=log)
    vad, spec, figs = choice.vad, choice.smoothing, choice.figures
    card_path = onnx_path.with_suffix(".json")
    card = load_card(card_path)
    ev = dict(card.evaluation)
    ev["validation_smoothing"] = figs
    ev["validation_vad"] = choice.to_json()
    dataclasses.replace(card, smoothing=spec, vad=vad, evaluation=ev).save(card_path)
    log(f"card defaults (tuned on validation): {vad}; {spec}; {figs}")


def speech_stream_eval(
    opts: AssessOptions, model: Any, tree: Path, out: Path, log: Log
) -> dict[str, Any]:
    from hark.models.evaluation import evaluate_streams, stream_pairs
    from hark.models.reports import format_events, write_json
    from hark.models.synth import write_speech_streams

    res: dict[str, Any] = {}
    for kind, unknown_only in (("words", False), ("unknown_only", True)):
        d = out / f"test-{kind}"
        if not d.is_dir():
            write_speech_streams(tree, d, opts.test_streams, split="test",
                                 duration_s=opts.test_stream_s,
                                 seed=sub_seed(opts.seed, 6, int(unknown_only)),
                                 unknown_only=unknown_only)
        ev = evaluate_streams(model, stream_pairs([d], None)).to_json()
        write_json(opts.out / "report" / f"test_streams_{kind}.json", ev)
        log(f"test streams ({kind}, {d}):\n{format_events(ev)}")
        res[kind] = {k: ev[k] for k in ("event_f1", "precision", "recall",
                                        "false_events_per_minute", "flips_per_minute", "minutes")}
    return res


# ---- per-frame models --------------------------------------------------------------------------
def commands_model(
    opts: AssessOptions, onnx_path: Path, tree: Path, data: Any, log: Log
) -> dict[str, Any]:
    """The per-frame command model: tune VAD + smoothing, then test streams and test clips."""
    model = speech_model_tuned(opts, onnx_path, data, log)
    return {
        "test_streams": speech_stream_eval(opts, model, tree, opts.out / "eval", log),
        "test_clips": score_test_clips(opts, model, tree, log, ", clip decision"),
    }


def sounds_model(
    opts: AssessOptions, onnx_path: Path, val_list: list, log: Log
) -> dict[str, Any]:
    """The sound-event model: tune smoothing, then fresh test streams at 10 dB and 0-20 dB."""
    from hark.live.model import OnnxModel
    from hark.models.evaluation import evaluate_streams, stream_pairs
    from hark.models.reports import format_events, write_json
    from hark.models.synth import write_sound_streams
    model = OnnxModel.load(onnx_path)
    if opts.tune:
        tune_into_card(model, onnx_path, [(s.audio, s.events) for s in val_list], [], log,
                       speech_gate=False)
        model = OnnxModel.load(onnx_path)
    evaluation: dict[str, Any] = {}
    for tag, snr in (("10db", (10.0, 10.0)), ("0-20db", (0.0, 20.0))):
        d = opts.out / "eval" / f"test-sounds-{tag}"
        if not d.is_dir():
            write_sound_streams(d, opts.test_streams * 2, seed=sub_seed(opts.seed, 7, int(snr[0])),
                                snr_db=snr)
        ev = evaluate_streams(model, stream_pairs([d], None)).to_json()
        write_json(opts.out / "report" / f"test_sounds_{tag}.json", ev)
        log(f"test streams (sounds at {tag}, {d}):\n{format_events(ev)}")
        evaluation[f"test_streams_{tag}"] = {
            k: ev[k] for k in ("event_f1", "precision", "recall", "false_events_per_minute",
                               "flips_per_minute", "minutes")}
    return evaluation
