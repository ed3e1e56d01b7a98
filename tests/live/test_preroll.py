"""Pre-roll: held frames run when the gate opens, back-dated; gating stays chunking invariant."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from hark.live.card import VadSpec
from hark.live.engine import Engine, EngineOptions, offline_posteriors
from hark.live.events import Event
from hark.live.features import compute_features
from hark.live.model import OnnxModel
from hark.live.preroll import FrameRing
from hark.live.vad import VadOptions, make_gate
from tests import onnx_models
from tests.live.test_streaming_window import split_window_model

RATE = 16000


def with_vad(model: OnnxModel, **vad: object) -> OnnxModel:
    """The same session, its card's gate set as given."""
    spec = replace(model.card.vad, enabled=True, **vad)  # type: ignore[arg-type]
    return OnnxModel(model.path, replace(model.card, vad=spec), model.session, model.output)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, OnnxModel]:
    d = tmp_path_factory.mktemp("preroll")
    split_dir = tmp_path_factory.mktemp("preroll_split")
    return {
        "lstm": OnnxModel.load(onnx_models.lstm_frame_model(d, vad=True)),
        "cnn": OnnxModel.load(onnx_models.conv_window_model(d)),
        # the same CNN run as a streaming front/head pair (each column computed once)
        "cnn-split": OnnxModel.load(split_window_model(onnx_models.conv_window_model(split_dir))),
    }


@pytest.fixture(scope="module")
def talk(speech_wav: Path) -> np.ndarray:
    """Speech, a second of silence, the speech again: the gate opens twice."""
    word, rate = sf.read(speech_wav, dtype="float32")
    assert rate == RATE
    return np.concatenate([word, np.zeros(RATE, dtype=np.float32), word])


# ---- the ring --------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(capacity=st.integers(0, 12), sizes=st.lists(st.integers(0, 20), max_size=12),
       take_at=st.sets(st.integers(0, 11)))
def test_ring_holds_the_newest_frames_and_reports_what_fell_out(
    capacity: int, sizes: list[int], take_at: set[int]
) -> None:
    ring = FrameRing(capacity, 2)
    held: list[int] = []  # the reference: a plain list of frame numbers
    nxt = 0
    for step, n in enumerate(sizes):
        frames = np.stack([np.arange(nxt, nxt + n, dtype=np.float32)] * 2, axis=1)
        first, dropped = ring.push(nxt, frames.reshape(n, 2))
        held.extend(range(nxt, nxt + n))
        want_dropped = held[: max(0, len(held) - capacity)]
        held = held[len(want_dropped):]
        assert dropped == len(want_dropped)
        if dropped:
            assert first == want_dropped[0]
        assert ring.count == len(held)
        if held:
            assert ring.first == held[0]
        nxt += n
        if step in take_at:
            got = ring.take()
            assert got[:, 0].tolist() == [float(h) for h in held]
            held = []
            assert ring.count == 0


# ---- pre-roll semantics ------------------------------------------------------------------------
def _gate_per_frame(model: OnnxModel, audio: np.ndarray, n_frames: int) -> np.ndarray:
    """The card's gate decision for each feature frame (the VAD frame complete at its end)."""
    gate = make_gate(RATE, VadOptions.from_spec(model.card.vad))
    gate.push(audio)
    fe = model.card.frontends["main"]
    hop, win = fe.hop_samples(RATE), fe.window_samples(RATE)
    return np.array([gate.is_open_at(i * hop + win) for i in range(n_frames)])


def _reference(model: OnnxModel, audio: np.ndarray, pre_roll: int, reset_frames: int
               ) -> np.ndarray:
    """What pre-roll means, written plainly: the model runs on every open frame and on up to
    `pre_roll` shut frames right before each opening; everything else is 0. State resets at the
    start of a run when the gate was shut for >= reset_frames before it (pre-roll included)."""
    card = model.card
    feats = compute_features(audio, card.frontends["main"], RATE)
    is_open = _gate_per_frame(model, audio, len(feats))
    sess = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    zero = {s.input: np.zeros(s.shape, np.float32) for s in card.state}
    state = dict(zero)
    post = np.zeros((len(feats), len(card.labels)), dtype=np.float32)
    i, off = 0, 0
    while i < len(feats):
        if not is_open[i]:
            off += 1
            i += 1
            continue
        j = i
        while j < len(feats) and is_open[j]:
            j += 1
        start = max(i - min(pre_roll, off), 0)
        if off >= reset_frames:
            state = dict(zero)
        outs = sess.run(["posteriors", "h_out", "c_out"], {"frames": feats[start:j][None], **state})
        post[start:j] = outs[0][0]
        state = {"h_in": outs[1], "c_in": outs[2]}
        off = 0
        i = j
    return post


@pytest.mark.parametrize("pre_roll_ms", [0.0, 150.0, 300.0])
def test_pre_roll_runs_the_model_over_the_frames_before_the_gate_opened(
    models: dict[str, OnnxModel], talk: np.ndarray, pre_roll_ms: float
) -> None:
    model = with_vad(models["lstm"], pre_roll_ms=pre_roll_ms, reset_after_ms=500.0)
    _, post = offline_posteriors(model, talk, chunk=160, vad=True)
    want = _reference(model, talk, int(pre_roll_ms / 10), 50)
    np.testing.assert_allclose(post, want, atol=1e-5)
    fe = model.card.frontends["main"]
    is_open = _gate_per_frame(model, talk, len(post))
    ran = post.any(axis=1)
    back_dated = ran & ~is_open
    # posteriors exist before each opening exactly when there is pre-roll
    assert back_dated.sum() == (0 if pre_roll_ms == 0 else 2 * int(pre_roll_ms / fe.hop_ms))


def test_pre_roll_posteriors_equal_the_ungated_model_from_a_fresh_state(
    models: dict[str, OnnxModel], talk: np.ndarray
) -> None:
    """After a long silence the state is reset, so the pre-roll and everything after it until
    the gate shuts is exactly the ungated model started fresh at the pre-roll's first frame."""
    model = with_vad(models["lstm"], pre_roll_ms=300.0, reset_after_ms=500.0)
    _, post = offline_posteriors(model, talk, vad=True)
    is_open = _gate_per_frame(model, talk, len(post))
    opens = np.flatnonzero(is_open[1:] & ~is_open[:-1]) + 1
    second = int(opens[opens > len(talk) // 2 // 160][0])
    start = second - 30
    end = second + int(np.argmin(is_open[second:]))
    feats = compute_features(talk, model.card.frontends["main"], RATE)
    sess = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    zero = {s.input: np.zeros(s.shape, np.float32) for s in model.card.state}
    fresh = sess.run(["posteriors"], {"frames": feats[start:end][None], **zero})[0][0]
    np.testing.assert_allclose(post[start:end], fresh, atol=1e-5)
    assert not post[start - 1].any()


def test_held_frames_are_answered_at_close(models: dict[str, OnnxModel]) -> None:
    model = with_vad(models["lstm"], pre_roll_ms=200.0)
    engine = Engine([model], EngineOptions(record=True))
    engine.feed(np.zeros(RATE, dtype=np.float32))
    assert len(engine.recording(0)[0]) == 98 - 20
    engine.close()
    times, post = engine.recording(0)
    assert len(times) == 98 and not post.any()
    np.testing.assert_allclose(np.diff(times), 0.01, atol=1e-9)


def test_window_model_pre_roll_computes_held_windows_when_the_gate_opens(
    models: dict[str, OnnxModel], talk: np.ndarray
) -> None:
    """A window model's decisions taken while shut, within pre_roll_ms of the opening, are
    computed (on their full windows, as ungated) when it opens; the others stay 0."""
    cnn = models["cnn"]
    _, ungated = offline_posteriors(cnn, talk)
    for pre_roll_ms, n_held in ((0.0, 0), (300.0, 3)):
        model = with_vad(cnn, pre_roll_ms=pre_roll_ms)
        times, post = offline_posteriors(model, talk, chunk=333, vad=True)
        assert post.shape == ungated.shape
        ran = np.asarray(post.any(axis=1), dtype=bool)
        np.testing.assert_allclose(post[ran], ungated[ran], atol=1e-5)
        rate = model.card.sample_rate
        gate = make_gate(rate, VadOptions.from_spec(model.card.vad))
        gate.push(talk)
        assert model.card.window_s is not None
        ends = np.round((times + model.card.window_s / 2) * rate).astype(int)
        is_open = np.array([gate.is_open_at(int(e)) for e in ends], dtype=bool)
        opens = np.flatnonzero(is_open[1:] & ~is_open[:-1]) + 1
        assert len(opens) >= 1
        for k in opens.tolist():
            assert ran[k - n_held : k].all() and (n_held == 0 or not ran[k - n_held - 1])
        assert (ran & ~is_open).sum() >= n_held


# ---- stream == offline with the gate on, any chunking -----------------------------------------
@pytest.mark.parametrize("name", ["lstm", "cnn", "cnn-split"])
@pytest.mark.parametrize("kind", ["webrtc", "silero"])
@settings(max_examples=8, deadline=None)
@given(cuts=st.lists(st.integers(1, 9000), min_size=1, max_size=30),
       pre_roll_ms=st.sampled_from([0.0, 100.0, 300.0]))
def test_gated_any_chunking_equals_offline(
    models: dict[str, OnnxModel], talk: np.ndarray, name: str, kind: str, cuts: list[int],
    pre_roll_ms: float,
) -> None:
    model = with_vad(models[name], kind=kind, pre_roll_ms=pre_roll_ms)
    # the split model's reference is the whole-window model: the pair must change nothing
    whole = with_vad(models["cnn" if name == "cnn-split" else name], kind=kind,
                     pre_roll_ms=pre_roll_ms)
    t_ref, ref = offline_posteriors(whole, talk, vad=True)
    engine = Engine([model], EngineOptions(record=True))
    events: list[Event] = []
    i = 0
    for c in cuts:
        events += engine.feed(talk[i : i + c])
        i += c
    events += engine.feed(talk[i:])
    events += engine.close()
    times, post = engine.recording(0)
    np.testing.assert_allclose(times, t_ref, atol=1e-9)
    np.testing.assert_allclose(post, ref, atol=1e-5)
    assert 0 < post.any(axis=1).sum() < len(post)  # the gate really shut and opened


def test_card_rejects_bad_gate_settings() -> None:
    from hark.live.card import CardError

    for bad in (dict(kind="rnnoise"), dict(pre_roll_ms=-1.0), dict(pre_roll_ms=5000.0),
                dict(threshold=1.5), dict(hangover_ms=-5.0)):
        with pytest.raises(CardError):
            replace(VadSpec(), **bad).validate(16000)
    with pytest.raises(CardError, match="silero VAD cannot run at 48000"):
        VadSpec(kind="silero").validate(48000)
    VadSpec(kind="silero").validate(8000)
    VadSpec(kind="silero", enabled=False).validate(48000)
