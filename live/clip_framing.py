"""Per-clip framing: a window's edge frames as a clip pipeline computes them.

A model trained on clips whose features were framed with librosa's center=True saw each clip
padded at both ends (n_fft // 2 samples of zeros, or a reflection). hark's stream is padded only
at its start, so in the middle of a stream the first and last frames of a window cover real
audio on the far side of the window's edges. With `framing: clip` (live.card.InputSpec) those
few frames are recomputed from the window's own samples, with the clip's padding, by the same
Frontend code; every other frame is the stream's, which is the same number.

Which frames: frame j of a window of n samples is centred on sample j * hop and spans
[j * hop - n_fft // 2, j * hop + n_fft - n_fft // 2); it leaves the window when j * hop < n_fft // 2
(the head) or j * hop + n_fft - n_fft // 2 > n (the tail). A causal frontend's frames stay
inside the window; with pre-emphasis its first frame reads the sample before the window, which
a clip pipeline takes as 0, so that frame is the head.
"""

from __future__ import annotations

import numpy as np

from hark.live.card import FrontendSpec
from hark.live.features import Frontend


class ClipFramer:
    """Replaces the edge frames of each window of `n_frames` frames (`n_samples` samples)."""

    def __init__(self, spec: FrontendSpec, sample_rate: int, n_frames: int,
                 n_samples: int) -> None:
        self.spec = spec
        self.sample_rate = sample_rate
        self.n_frames = n_frames
        self.n_samples = n_samples
        self.hop = spec.hop_samples(sample_rate)
        n_fft = spec.fft_size(sample_rate)
        self.half = n_fft // 2
        if spec.center:
            self.head = min(n_frames, -(-self.half // self.hop))
            # the first frame whose span passes the window's end
            past = (n_samples - (n_fft - self.half)) // self.hop + 1
            if past <= self.head:  # a window shorter than two frames: every frame is an edge
                self.head, past = 0, 0
            self.tail_from = min(n_frames, past)
        else:
            self.head = 1 if spec.preemphasis else 0
            self.tail_from = n_frames
        # frames a sub-stream starting at a tail's first sample must skip: they see its padding
        self._skip = self.half // self.hop + 1

    @property
    def edge_frames(self) -> int:
        """How many frames of each window are recomputed."""
        return self.head + self.n_frames - self.tail_from

    def apply(self, frames: np.ndarray, samples: np.ndarray) -> np.ndarray:
        """The window's frames with its edge frames as the clip `samples` frames them."""
        if not self.edge_frames:
            return frames
        out = np.array(frames, dtype=np.float32)
        x = np.asarray(samples, dtype=np.float64).reshape(-1)
        if self.head:
            need = (self.head - 1) * self.hop + self.spec.first_frame_samples(self.sample_rate)
            out[: self.head] = Frontend(self.spec, self.sample_rate).push(x[:need])[: self.head]
        if self.tail_from < self.n_frames:
            out[self.tail_from :] = self._tail(x)
        return out

    def _tail(self, x: np.ndarray) -> np.ndarray:
        """Frames tail_from .. n_frames - 1 of the clip x padded at its end as librosa pads it."""
        reflect = self.spec.pad_mode == "reflect"
        pad = x[-self.half - 1 : -1][::-1] if reflect else np.zeros(self.half)
        first = max(0, self.tail_from - self._skip)  # frame of the sub-stream's first sample
        sub = np.concatenate((x[first * self.hop :], pad))
        frames = Frontend(self.spec, self.sample_rate).push(sub)
        want = self.n_frames - self.tail_from
        got = frames[self.tail_from - first : self.tail_from - first + want]
        if len(got) != want:  # odd n_fft: librosa's count differs by one; keep the stream's
            raise ValueError(f"clip framing gave {len(got)} tail frames, not {want}")
        return got
