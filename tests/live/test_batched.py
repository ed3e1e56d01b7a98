"""BatchedEngine: N streams in one onnxruntime call per hop give what N live Engines give."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hark.bench.audio import synth
from hark.live import batched
from hark.live.batched import BatchedEngine
from hark.live.engine import Engine, EngineOptions
from hark.live.events import Event
from hark.live.model import OnnxModel
from tests import onnx_models
from tests.bench.stream_models import lstm_stack_model

RATE = 16000
HOP = 160


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("batched-models")
    return {
        "stack": lstm_stack_model(d, units=(32, 16), vad=True, name="stack"),
        "stack_fixed": lstm_stack_model(d, units=(32, 16), dynamic_batch=False, vad=True,
                                        name="stackfixed"),
        "cnn": onnx_models.conv_window_model(d),
    }


def _streams_audio(n: int, seconds: float) -> np.ndarray:
    """n different signals; stream 1 has long silences (gate shut, state reset after it)."""
    x = np.stack([synth(seconds, RATE, seed=10 + i) for i in range(n)])
    x[1, RATE // 2 : 2 * RATE] = 0.0
    x[-1] *= 0.2
    return x


def _with_pre_roll(model: OnnxModel, pre_roll_ms: float) -> OnnxModel:
    """The model with another card pre-roll (0 = posteriors of a shut gate are zeros at once)."""
    card = replace(model.card, vad=replace(model.card.vad, pre_roll_ms=pre_roll_ms))
    return OnnxModel(model.path, card, model.session, model.output)


def _compare(model: OnnxModel, session: object, vad: bool | None, n: int = 5,
             ragged: bool = False, pre_roll_ms: float = 300.0,
             kind: str | None = None) -> BatchedEngine:
    """Feed n streams through n Engines and one BatchedEngine; posteriors 1e-5, events equal.

    ragged: each stream is fed blocks of its own size (80..480 samples), so streams are never
    in lockstep, as independent WebSocket clients are not.
    """
    model = _with_pre_roll(model, pre_roll_ms)
    x = _streams_audio(n, 3.0)
    options = EngineOptions(vad=vad, record=True, vad_kind=kind)  # type: ignore[arg-type]
    engines = [Engine([model], options) for _ in range(n)]
    bank = BatchedEngine(model, options, session=session)
    ids = [bank.add_stream() for _ in range(n)]
    ev_engine: list[list[Event]] = [[] for _ in range(n)]
    ev_bank: dict[int, list[Event]] = {sid: [] for sid in ids}
    sizes = [80 * (1 + i % 6) if ragged else HOP for i in range(n)]
    pos = [0] * n
    while any(p < x.shape[1] for p in pos):
        for i, sid in enumerate(ids):
            block = x[i, pos[i] : pos[i] + sizes[i]]
            pos[i] += sizes[i]
            if block.size:
                ev_engine[i] += engines[i].feed(block)
                bank.feed(sid, block)
        for sid, evs in bank.process().items():
            ev_bank[sid] += evs
    for i, sid in enumerate(ids):
        ev_engine[i] += engines[i].close()
        ev_bank[sid] += bank.remove_stream(sid)
    assert bank.streams == []
    for i, sid in enumerate(ids):
        assert ev_bank[sid] == ev_engine[i]
    assert any(ev_engine)  # events happened, so equality means something
    return bank


def _posteriors_equal(model: OnnxModel, session: object, vad: bool | None, n: int = 5,
                      pre_roll_ms: float = 300.0) -> np.ndarray:
    """Posteriors of n Engines and one BatchedEngine equal (1e-5); returns the batched ones."""
    model = _with_pre_roll(model, pre_roll_ms)
    x = _streams_audio(n, 3.0)
    options = EngineOptions(vad=vad, record=True)
    engines = [Engine([model], options) for _ in range(n)]
    bank = BatchedEngine(model, options, session=session)
    ids = [bank.add_stream() for _ in range(n)]
    for h in range(0, x.shape[1], HOP):
        for i, e in enumerate(engines):
            e.feed(x[i, h : h + HOP])
        bank.feed_all({sid: x[i, h : h + HOP] for i, sid in enumerate(ids)})
    for i, sid in enumerate(ids):
        _, want = engines[i].recording(0)
        got = bank.recording(sid)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert bank.calls < sum(e.streams[0].runner.calls for e in engines)  # it did batch
    return np.concatenate([bank.recording(sid) for sid in ids])


@pytest.mark.parametrize(("vad", "pre_roll_ms"), [(False, 300.0), (True, 0.0), (True, 300.0)])
def test_batched_equals_unbatched(models: dict[str, Path], vad: bool, pre_roll_ms: float) -> None:
    model = OnnxModel.load(models["stack"])
    check = batched.check_batch(model)
    assert check.ok, check.reason
    bank = _compare(model, model.session, vad, pre_roll_ms=pre_roll_ms)
    _posteriors_equal(model, model.session, vad, pre_roll_ms=pre_roll_ms)
    if not vad:  # one call per hop for all five streams
        assert bank.calls == (3 * RATE - 400) // HOP + 1


def test_pre_roll_changes_what_the_model_answers(models: dict[str, Path]) -> None:
    """With the gate on, the pre-roll really runs the model on frames the gate had shut out."""
    model = OnnxModel.load(models["stack"])
    with_roll = _posteriors_equal(model, model.session, True, pre_roll_ms=300.0)
    without = _posteriors_equal(model, model.session, True, pre_roll_ms=0.0)
    assert with_roll.shape == without.shape
    assert (np.abs(with_roll).sum(axis=1) > 0).sum() > (np.abs(without).sum(axis=1) > 0).sum()


def test_silero_gate_per_stream(models: dict[str, Path]) -> None:
    """The card's or the options' gate kind is each stream's own: silero as well as webrtcvad."""
    model = OnnxModel.load(models["stack"])
    bank = _compare(model, model.session, vad=True, n=3, ragged=True, kind="silero")
    assert bank.vad_options is not None and bank.vad_options.kind == "silero"


def test_independent_feeds_of_different_sizes(models: dict[str, Path]) -> None:
    model = OnnxModel.load(models["stack"])
    _compare(model, model.session, vad=True, ragged=True)


def test_streams_come_and_go(models: dict[str, Path]) -> None:
    """A stream added late starts fresh; removing one closes its open event; others unaffected."""
    model = OnnxModel.load(models["stack"])
    x = _streams_audio(3, 3.0)
    options = EngineOptions(vad=False, record=True)
    bank = BatchedEngine(model, options)
    a = bank.add_stream()
    alone = Engine([model], options)
    late_ref = Engine([model], options)
    b = None
    for h in range(0, x.shape[1], HOP):
        blocks = {a: x[0, h : h + HOP]}
        alone.feed(x[0, h : h + HOP])
        if h == RATE:
            b = bank.add_stream()
        if b is not None:
            blocks[b] = x[1, h - RATE : h - RATE + HOP]
            late_ref.feed(x[1, h - RATE : h - RATE + HOP])
        bank.feed_all(blocks)
    assert b is not None and bank.streams == [a, b]
    np.testing.assert_allclose(bank.recording(a), alone.recording(0)[1], atol=1e-5, rtol=0)
    np.testing.assert_allclose(bank.recording(b), late_ref.recording(0)[1], atol=1e-5, rtol=0)
    closed = bank.remove_stream(a)
    assert closed == list(alone.close())
    assert bank.streams == [b]


def test_gate_closes_and_state_resets_somewhere(models: dict[str, Path]) -> None:
    """The VAD comparison is only meaningful if gates really shut (and open) mid-stream."""
    model = OnnxModel.load(models["stack"])
    bank = BatchedEngine(model, EngineOptions(vad=True, record=True))
    ids = [bank.add_stream() for _ in range(3)]
    x = _streams_audio(3, 3.0)
    for h in range(0, x.shape[1], HOP):
        bank.feed_all({sid: x[i, h : h + HOP] for i, sid in enumerate(ids)})
    silent = (bank.recording(ids[1]).sum(axis=1) == 0).mean()
    assert 0.2 < silent < 0.9


def test_fixed_batch_is_reported_and_relaxing_is_verified(models: dict[str, Path]) -> None:
    model = OnnxModel.load(models["stack_fixed"])
    check = batched.check_batch(model)
    assert not check.ok and "fixes the batch axis at 1" in check.reason
    session = batched.relaxed_session(model)
    assert batched.verify_batching(model, session) <= 1e-5
    _posteriors_equal(model, session, vad=True, n=3)


def test_window_models_are_not_batched(models: dict[str, Path]) -> None:
    model = OnnxModel.load(models["cnn"])
    check = batched.check_batch(model)
    assert not check.ok and "frame" in check.reason
    with pytest.raises(ValueError, match="frame"):
        BatchedEngine(model)
