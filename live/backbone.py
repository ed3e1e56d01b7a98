"""The frozen speech-embedding backbone: a frontend whose frames are 96-dim speech embeddings.

Google's speech_embedding as re-implemented in openWakeWord (Apache-2.0), converted to ONNX by
`python -m hark.models.backbone` from the `pyopen-wakeword` wheel and shipped in
live/backbones/speech_embedding/ (NOTICE there). Two graphs: a mel graph (16 kHz samples at
int16 scale -> 32-bin dB mel frames of 512 samples every 160) and an embedding graph (76 mel
frames -> one 96-dim vector). Between them, as openWakeWord's 80 ms calls do: each chunk of 8 mel
frames is clamped to 80 dB below its loudest value (the TFLite graph's top_db, which hark's build
cuts out of the graph so that many chunks go through one call), then scaled x / 10 + 2.
Embedding e covers samples [1280 e, 1280 e + 13152): causal, one every 80 ms, nothing from the
future, and the numbers of openWakeWord's own streaming (tests/live/test_backbone.py).

`EmbeddingFrontend` has the interface of live.features.Frontend (push, reset, frames_out, hop,
window, n_bins), so the engine shares one per stream among every model whose card uses it, and
training, evaluation and the live stream compute embeddings with this one code path. Both graphs
are frame-local (a mel frame depends only on its 512 samples, an embedding only on its 76 mel
frames) and batch-independent, so any chunking gives the offline numbers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from hark.live.card import (
    EMBEDDING_CHUNKS,
    EMBEDDING_DIM,
    EMBEDDING_HOP,
    EMBEDDING_MEL_FRAMES,
    EMBEDDING_MEL_HOP,
    EMBEDDING_MEL_WINDOW,
    EMBEDDING_RATE,
    EMBEDDING_STEP_MELS,
    EMBEDDING_WINDOW,
    BackboneRef,
    CardError,
    FrontendSpec,
)

BACKBONE_DIR = Path(__file__).parent / "backbones"
MEL_FILE = "melspectrogram.onnx"
EMBEDDING_FILE = "embedding.onnx"
INFO_FILE = "backbone.json"
INT16_SCALE = 32768.0  # the graphs take samples at int16 scale (full scale 1.0 -> 32768)
TOP_DB = 80.0  # openWakeWord's clamp below the loudest value of each 8-frame chunk
# bounded work per graph call: an hour of audio pushed at once never builds one huge tensor
MAX_MEL_FRAMES_PER_CALL = 4096  # a multiple of the 8-frame chunk
MAX_EMBEDDINGS_PER_CALL = 512


@dataclass(frozen=True)
class BackboneInfo:
    """What backbone.json says about the shipped graphs (written by hark.models.backbone)."""

    name: str
    folder: Path
    sha256: str
    source: str
    licence: str
    attribution: str

    def ref(self) -> BackboneRef:
        """The card's pin of this backbone."""
        return BackboneRef(self.name, self.sha256, self.source, self.licence, self.attribution)


def files_sha256(folder: Path) -> str:
    """One digest of both graphs (mel, then embedding): the card pins exactly these numbers."""
    h = hashlib.sha256()
    for name in (MEL_FILE, EMBEDDING_FILE):
        h.update(hashlib.sha256((folder / name).read_bytes()).digest())
    return h.hexdigest()


@lru_cache(maxsize=4)
def backbone_info(name: str = "speech_embedding") -> BackboneInfo:
    """The shipped backbone `name` (its folder is hark's own: a card can only name it)."""
    folder = BACKBONE_DIR / name
    try:
        meta = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
        sha = files_sha256(folder)
    except (OSError, ValueError) as e:
        raise CardError(f"the {name} backbone is not installed with hark ({folder}): {e}") from None
    if meta.get("sha256") != sha:
        raise CardError(f"the {name} backbone's files in {folder} do not match backbone.json")
    return BackboneInfo(name, folder, sha, str(meta.get("source", "")),
                        str(meta.get("licence", "")), str(meta.get("attribution", "")))


def check_ref(ref: BackboneRef) -> BackboneInfo:
    """The installed backbone a card was built on; CardError if its numbers differ."""
    info = backbone_info(ref.name)
    if ref.sha256 != info.sha256:
        raise CardError(
            f"the model was built on backbone {ref.name} {ref.sha256[:12]}, but hark ships "
            f"{info.sha256[:12]}: re-train or re-enrol it on this hark's backbone"
        )
    return info


class _Graphs:
    """The two onnxruntime sessions of one backbone, one intra-op thread each (as models)."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        self.mel = ort.InferenceSession(str(folder / MEL_FILE), so, providers=providers)
        self.emb = ort.InferenceSession(str(folder / EMBEDDING_FILE), so, providers=providers)
        self.mel_in = self.mel.get_inputs()[0].name
        self.emb_in = self.emb.get_inputs()[0].name
        self.calls = 0

    def mels(self, samples: np.ndarray) -> np.ndarray:
        """(n, 32) mel frames for the embedding graph of int16-scale samples; n a multiple of 8.

        The graph gives dB frame by frame; each chunk of 8 frames is clamped to TOP_DB below its
        loudest value and scaled as openWakeWord scales its mel output.
        """
        db = np.asarray(self.mel.run(None, {self.mel_in: samples[None, :]})[0], dtype=np.float32)
        db = db.reshape(-1, EMBEDDING_STEP_MELS, 32)
        floor = db.max(axis=(1, 2), keepdims=True) - np.float32(TOP_DB)
        return (np.maximum(db, floor) / np.float32(10.0) + np.float32(2.0)).reshape(-1, 32)

    def embed(self, windows: np.ndarray) -> np.ndarray:
        """(n, 96) embeddings of (n, 76, 32) mel windows."""
        self.calls += 1
        out = self.emb.run(None, {self.emb_in: windows[..., None]})[0]
        return np.asarray(out, dtype=np.float32).reshape(-1, EMBEDDING_DIM)


@lru_cache(maxsize=4)
def graphs(name: str = "speech_embedding") -> _Graphs:
    """One pair of sessions per process, shared by every frontend that runs this backbone."""
    return _Graphs(backbone_info(name).folder)


class EmbeddingFrontend:
    """Streaming speech embeddings: `push(samples)` returns the embeddings they complete.

    Mel frames are computed only when an embedding falls due (one mel call and one embedding
    call per 80 ms in a live stream, whatever the block size), and every mel frame once.
    """

    def __init__(self, spec: FrontendSpec, sample_rate: int, backbone: str = "speech_embedding"
                 ) -> None:
        spec.validate(sample_rate)
        if spec.kind != "embedding":
            raise ValueError(f"not an embedding frontend: {spec.kind}")
        self.spec = spec
        self.sample_rate = sample_rate
        self.window = EMBEDDING_WINDOW
        self.hop = EMBEDDING_HOP
        self.n_bins = EMBEDDING_DIM
        self._graphs = graphs(backbone)
        self.reset()

    def reset(self) -> None:
        """Forget pending samples and mel frames; restart frame numbering (a new stream)."""
        self.frames_out = 0  # embeddings produced: the index of the next one
        self._samples = np.zeros(0, dtype=np.float32)  # from mel frame _mel_next's first sample
        self._mel_next = 0  # index of the next mel frame to compute
        self._mels = np.zeros((0, 32), dtype=np.float32)  # mel frames from 8 * frames_out on

    @property
    def calls(self) -> int:
        """Embedding-graph calls so far, all streams of this process (for the bench)."""
        return self._graphs.calls

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add mono samples (full scale 1.0); return the (n, 96) embeddings they complete."""
        self._add(samples)
        out = []
        while True:  # bounded graph calls: an hour pushed at once never builds one huge tensor
            windows = self.due_windows()
            if windows is None:
                break
            out.append(self.embed(windows))
        if not out:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _add(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, dtype=np.float32).reshape(-1) * np.float32(INT16_SCALE)
        self._samples = np.concatenate((self._samples, x)) if self._samples.size else x

    def due_windows(self) -> np.ndarray | None:
        """The mel windows (k, 76, 32) of the next embeddings the held samples complete, or None.

        Counts them as produced: the caller embeds them (push, or EmbeddingBank for many
        streams in one call). At most MAX_MEL_FRAMES_PER_CALL mel frames per call.
        """
        step = EMBEDDING_STEP_MELS
        # whole clamp chunks of mel frames the held samples complete, against the chunks the
        # next embedding needs
        have = self._mel_next + _frames_in(self._samples.size) // step * step
        if have < step * (self.frames_out + EMBEDDING_CHUNKS):
            return None
        self._compute_mels(min(have, self._mel_next + MAX_MEL_FRAMES_PER_CALL))
        n_due = (len(self._mels) - EMBEDDING_MEL_FRAMES) // step + 1
        view = np.lib.stride_tricks.sliding_window_view(
            self._mels, EMBEDDING_MEL_FRAMES, axis=0)[::step][:n_due]
        windows = np.ascontiguousarray(view.transpose(0, 2, 1))
        self._mels = self._mels[step * n_due :]
        self.frames_out += n_due
        return windows

    def embed(self, windows: np.ndarray) -> np.ndarray:
        """(k, 96) embeddings of (k, 76, 32) mel windows, in bounded graph calls."""
        out = [self._graphs.embed(windows[i : i + MAX_EMBEDDINGS_PER_CALL])
               for i in range(0, len(windows), MAX_EMBEDDINGS_PER_CALL)]
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _compute_mels(self, upto: int) -> None:
        """Mel frames _mel_next .. upto - 1 (whole chunks) in one call, a bounded number."""
        n = upto - self._mel_next
        span = EMBEDDING_MEL_HOP * (n - 1) + EMBEDDING_MEL_WINDOW
        new = self._graphs.mels(np.ascontiguousarray(self._samples[:span]))
        self._samples = self._samples[EMBEDDING_MEL_HOP * n :]
        self._mel_next = upto
        self._mels = np.concatenate((self._mels, new)) if len(self._mels) else new


class EmbeddingBank:
    """Many streams' embedding frontends: every stream's due embeddings in one graph call.

    The mel graph stays per stream (cheap, ~0.1 ms per 80 ms); the embedding graph (~1.3 ms per
    embedding) takes the windows of all streams stacked on its batch axis. The same numbers as
    one EmbeddingFrontend per stream (the graph is batch-independent; tests hold it).
    """

    def __init__(self, n_streams: int, backbone: str = "speech_embedding") -> None:
        self.frontends = [EmbeddingFrontend(FrontendSpec(kind="embedding"), EMBEDDING_RATE,
                                            backbone) for _ in range(n_streams)]
        self.calls = 0

    def push(self, blocks: list[np.ndarray]) -> list[np.ndarray]:
        """One block per stream; each stream's (n, 96) new embeddings."""
        if len(blocks) != len(self.frontends):
            raise ValueError(f"{len(blocks)} blocks for {len(self.frontends)} streams")
        parts: list[list[np.ndarray]] = [[] for _ in blocks]
        for fe, block in zip(self.frontends, blocks, strict=True):
            fe._add(block)
        while True:
            due = [(i, w) for i, fe in enumerate(self.frontends)
                   if (w := fe.due_windows()) is not None]
            if not due:
                break
            stacked = np.concatenate([w for _, w in due])
            embs = self.frontends[0].embed(stacked)
            self.calls += 1
            at = 0
            for i, w in due:
                parts[i].append(embs[at : at + len(w)])
                at += len(w)
        empty = np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return [np.concatenate(p) if len(p) > 1 else (p[0] if p else empty) for p in parts]


def _frames_in(n_samples: int) -> int:
    """Mel frames n_samples (from a frame's first sample) complete."""
    if n_samples < EMBEDDING_MEL_WINDOW:
        return 0
    return (n_samples - EMBEDDING_MEL_WINDOW) // EMBEDDING_MEL_HOP + 1


def n_embeddings(n_samples: int) -> int:
    """Embeddings a signal of n_samples gives (offline, from its first sample)."""
    if n_samples < EMBEDDING_WINDOW:
        return 0
    return (n_samples - EMBEDDING_WINDOW) // EMBEDDING_HOP + 1


def window_seconds(n_embeddings: int) -> float:
    """The window_s whose window holds exactly n_embeddings embeddings."""
    return (EMBEDDING_WINDOW + (n_embeddings - 1) * EMBEDDING_HOP) / EMBEDDING_RATE


def session_for(spec: FrontendSpec) -> Any:
    """The shared sessions behind an embedding frontend (the bench times them bare)."""
    return graphs()


def embed_batch(audio: np.ndarray, rows_per_call: int = 32) -> np.ndarray:
    """Embeddings of many equal-length signals at once: (B, samples) -> (B, n, 96).

    The same numbers as one EmbeddingFrontend per row (tests/live/test_backbone.py), with the
    graphs called on many rows at a time: how training embeds its clips.
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embed_batch takes (B, samples), not {x.shape}")
    n_emb = n_embeddings(x.shape[1])
    out = np.zeros((x.shape[0], max(n_emb, 0), EMBEDDING_DIM), dtype=np.float32)
    if n_emb <= 0 or not len(x):
        return out
    g = graphs()
    n_mels = EMBEDDING_STEP_MELS * (n_emb - 1 + EMBEDDING_CHUNKS)
    span = EMBEDDING_MEL_HOP * (n_mels - 1) + EMBEDDING_MEL_WINDOW
    for r in range(0, len(x), rows_per_call):
        rows = np.ascontiguousarray(x[r : r + rows_per_call, :span] * np.float32(INT16_SCALE))
        db = np.asarray(g.mel.run(None, {g.mel_in: rows})[0], dtype=np.float32)
        db = db.reshape(len(rows), -1, 32)[:, :n_mels].reshape(len(rows), -1,
                                                               EMBEDDING_STEP_MELS, 32)
        floor = db.max(axis=(2, 3), keepdims=True) - np.float32(TOP_DB)
        mels = (np.maximum(db, floor) / np.float32(10.0) + np.float32(2.0)).reshape(
            len(rows), n_mels, 32)
        view = np.lib.stride_tricks.sliding_window_view(mels, EMBEDDING_MEL_FRAMES, axis=1)
        windows = view[:, ::EMBEDDING_STEP_MELS][:, :n_emb].transpose(0, 1, 3, 2)
        flat = np.ascontiguousarray(windows.reshape(-1, EMBEDDING_MEL_FRAMES, 32))
        embs = [g.embed(flat[i : i + MAX_EMBEDDINGS_PER_CALL])
                for i in range(0, len(flat), MAX_EMBEDDINGS_PER_CALL)]
        out[r : r + len(rows)] = np.concatenate(embs).reshape(len(rows), n_emb, EMBEDDING_DIM)
    return out
