"""The per-hop call on bound buffers gives session.run's numbers, state carried the same way.

FrameRunner.run_one binds the frame, the state and the posteriors from its second call on
(live/bound_step.py); run() and reset() work on the same state, so any mix of the two paths and
resets must answer as one plain session.run per frame does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from hark.live.bound_step import BoundStep, can_bind
from hark.live.model import OnnxModel
from hark.live.runners import FrameRunner
from tests import onnx_models

REPO = Path(__file__).resolve().parents[2]


def _plain_steps(model: OnnxModel, frames: np.ndarray, resets: set[int]) -> np.ndarray:
    """One session.run per frame, the state fed back by hand: the reference."""
    card = model.card
    state = {s.input: np.zeros(s.shape, np.float32) for s in card.state}
    outs = [model.output, *(s.output for s in card.state)]
    rows = []
    for i, f in enumerate(frames):
        if i in resets:
            state = {k: np.zeros_like(v) for k, v in state.items()}
        out = model.session.run(outs, {**state, card.inputs[0].name: f[None, None, :]})
        state = dict(zip((s.input for s in card.state), out[1:], strict=True))
        rows.append(out[0].reshape(-1))
    return np.array(rows, dtype=np.float32)


def test_bundled_commands_hop_by_hop_equals_plain_runs() -> None:
    model = OnnxModel.load(REPO / "models" / "bundled" / "commands.onnx")
    rng = np.random.default_rng(0)
    frames = rng.normal(-6.0, 3.0, (60, 40)).astype(np.float32)
    runner = FrameRunner(model)
    assert can_bind(model.session)
    norm = runner.norm
    assert norm is not None
    got = np.concatenate([runner.run_one(f[None, :]) for f in frames])
    assert runner._step is not None  # bound from the second call on
    mean, std = np.asarray(norm.mean, np.float32), np.asarray(norm.std, np.float32)
    want = _plain_steps(model, (frames - mean) / std, set())
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_paths_and_resets_mixed_answer_as_one_run_per_frame(tmp_path: Path) -> None:
    path = onnx_models.lstm_frame_model(tmp_path, hidden=16)
    model = OnnxModel.load(path)
    rng = np.random.default_rng(1)
    frames = rng.normal(0.0, 1.0, (40, 40)).astype(np.float32)
    runner = FrameRunner(model)
    assert runner.norm is None
    rows: list[np.ndarray] = []
    i = 0
    plan = [1, 1, 1, 3, 1, "reset", 1, 5, 1, 1, "reset", 2, 1, 1, 4, 1, 1, 1]
    resets = set()
    for step in plan:
        if step == "reset":
            runner.reset()
            resets.add(i)
            continue
        assert isinstance(step, int)
        chunk = frames[i : i + step]
        rows.append(runner.run_one(chunk) if step == 1 else runner.run(chunk))
        i += step
    got = np.concatenate(rows)
    np.testing.assert_allclose(got, _plain_steps(model, frames[:i], resets), rtol=0, atol=1e-6)


def test_returned_rows_are_not_overwritten_by_the_next_call(tmp_path: Path) -> None:
    model = OnnxModel.load(onnx_models.lstm_frame_model(tmp_path, hidden=16))
    runner = FrameRunner(model)
    rng = np.random.default_rng(2)
    frames = rng.normal(0.0, 1.0, (6, 40)).astype(np.float32)
    kept = [runner.run_one(f[None, :]) for f in frames]
    copies = [k.copy() for k in kept]
    runner.run_one(frames[0][None, :])
    for k, c in zip(kept, copies, strict=True):
        np.testing.assert_array_equal(k, c)
    assert len({k.tobytes() for k in kept}) == len(kept)  # the rows differ: a real test


def test_bound_step_swaps_state_without_copies(tmp_path: Path) -> None:
    model = OnnxModel.load(onnx_models.lstm_frame_model(tmp_path, hidden=8))
    sess = model.session
    assert can_bind(sess)
    frame = np.zeros((1, 1, 40), np.float32)
    step = BoundStep(sess, "frames", frame, "posteriors", (1, 1, 3),
                     [("h_in", "h_out", (1, 1, 8)), ("c_in", "c_out", (1, 1, 8))])
    first = step.state
    frame[...] = 0.5
    post = step.run().copy()
    second = step.state
    assert second[0] is not first[0]  # the outputs became the next inputs
    want = sess.run(None, {"frames": frame, "h_in": np.zeros((1, 1, 8), np.float32),
                           "c_in": np.zeros((1, 1, 8), np.float32)})
    np.testing.assert_array_equal(post, want[0])
    np.testing.assert_array_equal(second[0], want[1])
    np.testing.assert_array_equal(second[1], want[2])
    step.zero()
    assert not step.state[0].any()


def test_only_a_cpu_onnxruntime_session_is_bound(tmp_path: Path) -> None:
    class StandIn:
        def run(self, outputs: object, feeds: object) -> list[np.ndarray]:
            return []

    assert not can_bind(StandIn())
    path = onnx_models.lstm_frame_model(tmp_path)
    assert can_bind(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]))
