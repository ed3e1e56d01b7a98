"""The engine end to end on tiny ONNX models: stream equals offline, sharing, gating, events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from hark.live.card import SmoothingSpec
from hark.live.engine import Engine, EngineOptions, offline_posteriors
from hark.live.events import Event, OpenEvent
from hark.live.features import compute_features
from hark.live.model import OnnxModel
from tests import onnx_models

CHUNKS = [1, 160, 161, 1000, 16000]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("models")
    onnx_models.lstm_frame_model(d)
    onnx_models.conv_window_model(d)
    onnx_models.fusion_model(d)
    onnx_models.raw_window_model(d)
    return d


def _audio(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 440 * t) * (t % 1 < 0.4)
    return x.astype(np.float32)


def _offline_reference(model: OnnxModel, audio: np.ndarray) -> np.ndarray:
    """What training/evaluation computes: features of the whole signal, then the model."""
    card = model.card
    sess = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    feats = {
        name: compute_features(audio, fe, card.sample_rate, card.normalization.get(name))
        for name, fe in card.frontends.items()
    }
    if card.streaming:
        inp = card.inputs[0]
        feeds = {inp.name: feats[inp.frontend][None]}
        feeds.update({s.input: np.zeros(s.shape, np.float32) for s in card.state})
        return sess.run([model.output], feeds)[0][0]
    assert card.window_s and card.stride_s
    win = int(card.window_s * card.sample_rate)
    stride = int(card.stride_s * card.sample_rate)
    rows = []
    for end in range(win, audio.size + 1, stride):
        feeds = {}
        for inp in card.inputs:
            fe = card.frontends[inp.frontend]
            hop = 1 if fe.kind == "raw" else fe.hop_samples(card.sample_rate)
            first = (end - win) // hop
            x = feats[inp.frontend][first : first + card.expected_frames(inp)]
            feeds[inp.name] = x.reshape((1, *[d or -1 for d in inp.shape[1:]])).astype(np.float32)
        rows.append(sess.run([model.output], feeds)[0].reshape(-1))
    return np.stack(rows)


@pytest.mark.parametrize("name", ["lstm", "cnn", "fusion", "raw"])
@pytest.mark.parametrize("chunk", CHUNKS)
def test_stream_equals_offline(model_dir: Path, name: str, chunk: int) -> None:
    model = OnnxModel.load(model_dir / f"{name}.onnx")
    audio = _audio(2.5, model.card.sample_rate)
    expected = _offline_reference(model, audio)
    times, post = offline_posteriors(model, audio, chunk=chunk)
    assert post.shape == expected.shape
    np.testing.assert_allclose(post, expected, atol=1e-4)
    hop = model.card.decision_hop_s()
    np.testing.assert_allclose(np.diff(times), hop, atol=1e-9)


def test_window_runner_reuses_frames(model_dir: Path) -> None:
    """Features are computed once per frame, not once per window."""
    model = OnnxModel.load(model_dir / "cnn.onnx")
    engine = Engine([model], EngineOptions(vad=False))
    audio = _audio(3.0, 8000)
    for i in range(0, audio.size, 80):
        engine.feed(audio[i : i + 80])
    (fe,) = engine.streams[0].group.frontends.values()
    assert fe.frames_out == (audio.size - 160) // 80 + 1  # every frame once
    assert engine.streams[0].runner.calls == 21  # windows ending at 1.0, 1.1, ..., 3.0 s


def test_models_share_one_frontend(model_dir: Path, tmp_path: Path) -> None:
    other = onnx_models.lstm_frame_model(tmp_path, name="lstm2", seed=5)
    a, b = OnnxModel.load(model_dir / "lstm.onnx"), OnnxModel.load(other)
    fusion = OnnxModel.load(model_dir / "fusion.onnx")
    engine = Engine([a, b, fusion], EngineOptions(vad=False, record=True))
    group = engine.streams[0].group
    assert len(group.frontends) == 2  # logmel shared by all three, mfcc for fusion only
    audio = _audio(1.5, 16000)
    engine.feed(audio)
    np.testing.assert_allclose(engine.recording(0)[1], offline_posteriors(a, audio)[1], atol=1e-6)
    np.testing.assert_allclose(engine.recording(1)[1], offline_posteriors(b, audio)[1], atol=1e-6)


def test_models_at_two_rates_on_one_stream(model_dir: Path) -> None:
    lstm = OnnxModel.load(model_dir / "lstm.onnx")  # 16 kHz
    cnn = OnnxModel.load(model_dir / "cnn.onnx")  # 8 kHz: resampled inside the engine
    with pytest.raises(ValueError, match="give sample_rate"):
        Engine([lstm, cnn])  # never silently the first model's rate
    engine = Engine([lstm, cnn], EngineOptions(vad=False, record=True), sample_rate=16000)
    audio = _audio(2.0, 16000)
    for i in range(0, audio.size, 320):
        engine.feed(audio[i : i + 320])
    t, post = engine.recording(1)
    assert len(post) >= 9  # windows ending at 1.0 .. 1.9 s at least (resampler delay)
    assert np.isfinite(post).all()


def test_a_stream_at_another_rate_is_resampled(model_dir: Path) -> None:
    """48 kHz samples into a 16 kHz model: the same posteriors as soxr.resample then 16 kHz."""
    import soxr

    lstm = OnnxModel.load(model_dir / "lstm.onnx")
    audio48 = _audio(1.0, 48000)
    engine = Engine(lstm, EngineOptions(vad=False, record=True), sample_rate=48000)
    for i in range(0, audio48.size, 480):
        engine.feed(audio48[i : i + 480])
    assert engine.time_s == pytest.approx(1.0)
    direct = Engine(lstm, EngineOptions(vad=False, record=True))
    direct.feed(soxr.resample(audio48, 48000, 16000).astype(np.float32))
    n = min(len(engine.recording(0)[1]), len(direct.recording(0)[1]))
    assert n > 80
    np.testing.assert_allclose(engine.recording(0)[1][:n], direct.recording(0)[1][:n], atol=1e-4)


def test_feed_scales_integer_samples_and_refuses_other_dtypes(model_dir: Path) -> None:
    lstm = OnnxModel.load(model_dir / "lstm.onnx")
    audio = _audio(0.5, 16000)
    pcm = np.round(audio * 32767).astype(np.int16)
    as_float = Engine(lstm, EngineOptions(vad=False, record=True))
    as_float.feed(pcm.astype(np.float64) / 32768.0)
    as_int = Engine(lstm, EngineOptions(vad=False, record=True))
    as_int.feed(pcm)
    np.testing.assert_allclose(as_int.recording(0)[1], as_float.recording(0)[1], atol=1e-6)
    as_i32 = Engine(lstm, EngineOptions(vad=False, record=True))
    as_i32.feed(pcm.astype(np.int32) << 16)
    np.testing.assert_allclose(as_i32.recording(0)[1], as_float.recording(0)[1], atol=1e-6)
    for bad in (pcm.astype(np.uint8), np.zeros((100, 2), np.float32), audio.astype(complex)):
        with pytest.raises(ValueError, match="samples|mono"):
            as_int.feed(bad)


def test_update_reports_opened_events_scores_and_a_bounded_history(tmp_path: Path) -> None:
    model = OnnxModel.load(onnx_models.band_energy_model(tmp_path, (-5.0, -5.0)))
    engine = Engine(model, EngineOptions(vad=False, event_history=2))
    t = np.arange(16000 * 4) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 300 * t) * ((t % 1.0) < 0.5)).astype(np.float32)
    opened: list[OpenEvent] = []
    finished: list[Event] = []
    scored = 0
    for i in range(0, tone.size, 160):
        up = engine.feed(tone[i : i + 160])
        opened.extend(up.opened)
        finished.extend(up.finished)
        if up.scores[model.name]:
            scored += 1
            assert set(up.scores[model.name]) == set(model.card.labels)
        for ev in up.opened:
            assert ev in up.active and ev.label == "low"
    finished.extend(engine.close())
    assert [e.label for e in finished] == ["low"] * 4
    assert [round(e.onset_s, 1) for e in opened] == [round(e.onset_s, 1) for e in finished]
    assert scored > 300
    assert list(engine.events) == finished[-2:]  # the history keeps the latest two
    engine.reset()
    assert engine.time_s == 0.0 and not engine.feed(tone[:1600]).finished


def test_nonfinite_samples_are_replaced_and_counted(model_dir: Path) -> None:
    model = OnnxModel.load(model_dir / "lstm.onnx")
    engine = Engine([model], EngineOptions(vad=False, record=True))
    audio = _audio(1.0, 16000)
    audio[100:110] = np.nan
    audio[500] = np.inf
    engine.feed(audio)
    assert engine.nonfinite == 11
    assert np.isfinite(engine.recording(0)[1]).all()


def _tone(rate: int, freq: float, start: float, stop: float, total: float) -> np.ndarray:
    t = np.arange(int(total * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t) * ((t >= start) & (t < stop))).astype(np.float32)


def test_events_match_known_segments(tmp_path: Path) -> None:
    rate = 16000
    rng = np.random.default_rng(7)
    low = _tone(rate, 300, 1.0, 1.5, 4.0)
    high = _tone(rate, 6000, 2.0, 2.7, 4.0)
    noise = (1e-4 * rng.standard_normal(low.size)).astype(np.float32)
    audio = low + high + noise
    # per band: log of half the steady tone power, i.e. the level of a frame whose analysis
    # window is half covered by the tone (frames centred past the onset are above it)
    thr = []
    for sig, band, mid in ((low, slice(0, 10), 1.25), (high, slice(30, 40), 2.35)):
        feats = compute_features(sig + noise, onnx_models.LOGMEL, rate)
        steady = np.exp(feats[int(mid * 100), band]).mean()
        thr.append(float(np.log(steady / 2)))
    model = OnnxModel.load(onnx_models.band_energy_model(tmp_path, (thr[0], thr[1])))
    hop = 0.01
    for chunk in (160, 1000, 7):
        engine = Engine([model])
        events: list[Event] = []
        for i in range(0, audio.size, chunk):
            events += engine.feed(audio[i : i + chunk])
        events += engine.close()
        got = sorted((e.label, e.onset_s, e.offset_s) for e in events)
        assert [g[0] for g in got] == ["high", "low"], got
        (_, on_h, off_h), (_, on_l, off_l) = got
        assert abs(on_l - 1.0) <= hop and abs(off_l - 1.5) <= hop
        assert abs(on_h - 2.0) <= hop and abs(off_h - 2.7) <= hop


def test_hysteresis_holds_a_flickering_detector(tmp_path: Path) -> None:
    """Amplitude-modulated tone around the threshold: raw posteriors flicker, events do not."""
    rate = 16000
    t = np.arange(4 * rate) / rate
    env = 0.5 * (1 + 0.6 * np.sign(np.sin(2 * np.pi * 17 * t)))  # 17 Hz square flicker
    sig = (0.3 * env * np.sin(2 * np.pi * 300 * t) * ((t > 1) & (t < 3))).astype(np.float32)
    feats = compute_features(sig, onnx_models.LOGMEL, rate)
    band = np.log(np.exp(feats[:, 0:10]).mean(axis=1))
    thr = float(np.median(band[110:290]))  # right in the middle of the flicker
    smooth = SmoothingSpec(method="median", median_frames=9, threshold_on=0.5, threshold_off=0.2,
                           min_on_ms=50, min_off_ms=200)
    model = OnnxModel.load(onnx_models.band_energy_model(tmp_path, thr, smoothing=smooth))
    engine = Engine([model], EngineOptions(record=True))
    events = [*engine.feed(sig), *engine.close()]
    post = engine.recording(0)[1][:, 0]
    raw_flips = int(np.sum(np.diff((post >= 0.5).astype(int)) != 0))
    low = [e for e in events if e.label == "low"]
    assert raw_flips > 20
    assert len(low) == 1
    assert abs(low[0].onset_s - 1.0) < 0.1 and abs(low[0].offset_s - 3.0) < 0.15


def test_vad_gate_skips_inference_and_zeroes_posteriors(tmp_path: Path) -> None:
    path = onnx_models.lstm_frame_model(tmp_path, vad=True)
    model = OnnxModel.load(path)
    silence = np.zeros(16000, dtype=np.float32)
    engine = Engine([model], EngineOptions(record=True))
    engine.feed(silence)
    # the last pre_roll_ms (300 ms: 30 frames) are held in case the gate opens next
    assert engine.recording(0)[1].shape[0] == 98 - 30
    engine.close()
    _, post = engine.recording(0)
    assert post.shape[0] == 98 and not post.any()
    assert engine.streams[0].runner.calls == 0


def test_gated_stream_is_chunking_invariant(tmp_path: Path, speech_wav: Path) -> None:
    import soundfile as sf

    audio, rate = sf.read(speech_wav, dtype="float32")
    assert rate == 16000
    model = OnnxModel.load(onnx_models.lstm_frame_model(tmp_path, vad=True))
    ref = None
    for chunk in (160, 333, 4000):
        _, post = offline_posteriors(model, audio, chunk=chunk, vad=True)
        gated_on = post.any(axis=1)
        assert 0 < gated_on.sum() < len(post)  # speech opens the gate, silence shuts it
        if ref is None:
            ref = post
        np.testing.assert_allclose(post, ref, atol=1e-5)


def test_state_resets_after_silence(tmp_path: Path, speech_wav: Path) -> None:
    """Once the gate has been shut for reset_after_ms, the next word starts from zero state."""
    import soundfile as sf

    word, _ = sf.read(speech_wav, dtype="float32")
    model = OnnxModel.load(onnx_models.lstm_frame_model(tmp_path, vad=True))
    audio = np.concatenate([word, np.zeros(16000, dtype=np.float32), word])
    feats = compute_features(audio, onnx_models.LOGMEL, 16000)
    sess = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    zero = {s.input: np.zeros(s.shape, np.float32) for s in model.card.state}
    for reset in (True, False):
        engine = Engine([model], EngineOptions(record=True, reset_after_silence=reset))
        engine.feed(audio)
        _, post = engine.recording(0)
        on = np.flatnonzero(post.any(axis=1))
        second = on[on > (len(word) + 8000) // 160][0]  # first gated-on frame after the gap
        fresh = sess.run(["posteriors"], {"frames": feats[second : second + 1][None], **zero})[0]
        same = np.allclose(post[second], fresh[0, 0], atol=1e-5)
        assert same == reset


def test_level_meter_is_the_last_block_even_if_the_caller_reuses_it(model_dir: Path) -> None:
    model = OnnxModel.load(model_dir / "lstm.onnx")
    engine = Engine([model], EngineOptions(vad=False))
    assert engine.level_dbfs == -120.0 and engine.peak == 0.0
    block = (0.25 * np.sin(np.arange(160) / 7.0)).astype(np.float32)
    block[3] = -0.75
    engine.feed(block)
    want_db = 10 * np.log10(np.mean(block.astype(np.float64) ** 2))
    assert engine.peak == 0.75 and abs(engine.level_dbfs - want_db) < 1e-6
    block[:] = 0.0  # a caller refilling its buffer: the meter still shows what was fed
    assert engine.peak == 0.75 and abs(engine.level_dbfs - want_db) < 1e-6


def test_every_update_scores_every_class_with_its_last_smoothed_value() -> None:
    """Gate shut (frames held as pre-roll) or a window model between strides: no frame is
    completed, and each class keeps its last smoothed score instead of vanishing or dropping
    to 0 (the bundled commands' gate and the window model commands-cnn, on the demo)."""
    import soundfile as sf

    from hark.live.model import bundled_dir

    audio, rate = sf.read(str(bundled_dir() / "demo.wav"), dtype="float32")
    models = [OnnxModel.load("commands"), OnnxModel.load("commands-cnn")]
    engine = Engine(models, sample_rate=rate)
    last = {m.name: dict.fromkeys(m.card.labels, 0.0) for m in models}
    held = dict.fromkeys(last, 0)
    for i in range(0, rate * 8, 160):
        up = engine.feed(audio[i : i + 160])
        for stream in engine.streams:
            name = stream.card.name
            scores = up.scores[name]
            assert list(scores) == list(stream.card.labels)
            if stream.rows == 0:
                assert scores == last[name]
                held[name] += any(v > 0 for v in scores.values())
            last[name] = dict(zip(stream.card.labels, stream.smoother.newest_row().tolist(),
                                  strict=True))
    assert held["commands"] > 0 and held["commands-cnn"] > 100, held
    final = engine.close()
    assert all(list(final.scores[m.name]) == list(m.card.labels) for m in models)


@pytest.mark.parametrize("kwargs", [
    {"vad": "off"}, {"vad": 0}, {"vad_kind": "webrtcvad"}, {"vad_kind": True},
    {"vad_mode": 4}, {"vad_mode": -1}, {"vad_mode": True}, {"vad_mode": 1.0}, {"vad_mode": "2"},
    {"history": 0}, {"history": 2.5}, {"history": True}, {"event_history": -1},
    {"event_history": "10"}, {"record": "yes"}, {"record": 1}, {"reset_after_silence": None},
])
def test_engine_options_refuse_what_they_would_misread(kwargs: dict[str, Any]) -> None:
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=rf"EngineOptions\.{name} must be .*not {kwargs[name]!r}"):
        EngineOptions(**kwargs)


def test_engine_options_take_numpy_scalars_as_python_ones() -> None:
    given: dict[str, Any] = {"vad": np.bool_(True), "vad_mode": np.int64(2),
                             "history": np.int32(7), "event_history": np.int64(3),
                             "record": np.bool_(False)}
    o = EngineOptions(**given)
    assert (o.vad, o.vad_mode, o.history, o.event_history, o.record) == (True, 2, 7, 3, False)
    assert all(type(v) in (bool, int) for v in (o.vad, o.vad_mode, o.history, o.event_history))
    assert EngineOptions(vad=None, vad_kind="silero", vad_mode=None).vad_kind == "silero"
