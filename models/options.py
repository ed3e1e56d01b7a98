"""The options of `hark train`, in a module light enough for the CLI to import at start-up.

Each field's metadata["help"] is its `hark train --help` text (hark.live.cli_options generates
the options from these fields: name, type, default and help written once, here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _h(default: Any, text: str) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class TrainOptions:
    """What `hark train` was asked for (see `hark train --help`)."""

    arch: str
    out: Path
    task: str = "commands"
    data: Path | None = None
    synth: int | None = None
    epochs: int = _h(30, "maximum epochs (default 30)")
    seed: int = _h(0, "seed of data, weights and order (default 0)")
    name: str | None = None
    batch_size: int = 32
    patience: int = _h(5, "early-stopping patience in epochs (default 5)")
    learning_rate: float = _h(1e-3, "initial Adam learning rate (default 0.001)")
    threads: int = _h(2, "TensorFlow intra-op threads (default 2)")
    seq_frames: int = _h(500, "rnn: frames per training crop (default 500)")
    target_delay_ms: float = _h(50.0, "rnn commands: word targets start/end this much after "
                                "the word (default 50)")
    target_tail_ms: float = _h(100.0, "rnn commands: word targets last this much longer after "
                               "the word (default 100)")
    onset_crops: float = _h(0.5, "rnn commands: fraction of training crops that start at a "
                            "word onset (default 0.5)")
    spec_augment: bool = _h(True, "rnn: no level jitter / frequency masks on the training crops")
    freq_warp: float = _h(0.0, "rnn and spectrogram clip models (cnn, fusion): stretch each "
                          "crop's frequency axis by a factor in [1-W, 1+W] (e.g. 0.1; default 0: "
                          "off)")
    tilt_db: float = _h(0.0, "rnn, cnn, fusion: a random smooth EQ of up to +-DB across the bands "
                        "per crop (default 0: off)")
    channels: float = _h(0.0, "rnn (commands, sounds): share of training streams played through a "
                         "simulated room, microphone and channel (reverb, EQ, laptop high-pass, "
                         "telephone, MP3, clipping; models.data.rooms; default 0: off)")
    rir_cache: Path = _h(Path("cache/rooms"), "folder where the simulated room impulse "
                         "responses are cached (default cache/rooms)")
    negatives: Path | None = _h(None, "rnn commands: a folder of real speech that holds none of "
                                "the words (e.g. from `hark synth prompts`); cut into 0.4-3 s "
                                "pieces and added to the training words as _unknown_")
    negative_share: float = _h(0.5, "pieces of --negatives per unknown word of the training "
                               "pool (default 0.5)")
    speech_tree: Path | None = _h(None, "rnn sounds: draw the speech class from the word clips "
                                  "of this tree's train split (validation: its validation "
                                  "split), e.g. a many-engine `hark synth tree`; default: "
                                  "espeak-ng words")
    speech_real: Path | None = _h(None, "rnn sounds: also draw speech events from 0.4-3 s pieces "
                                  "of the real speech in this folder (e.g. `hark synth "
                                  "prompts`)")
    speech_clips: int = _h(6000, "rnn sounds: speech clips drawn from --speech-tree, and half "
                           "as many pieces of --speech-real (default 6000)")
    music: Path | None = _h(None, "rnn: a folder of background recordings (e.g. `hark synth "
                            "music`) laid under --music-share of the training streams: commands "
                            "5-25 dB below the words, sounds -6..+20 dB over the coloured noise")
    music_share: float = _h(0.5, "share of training streams with --music beneath (default 0.5)")
    streams_per_epoch: int | None = None
    val_streams: int = 24
    tune_streams: int = _h(48, "validation word streams (30 s) that pick the card's VAD and "
                           "smoothing; half as many negatives (default 48)")
    test_streams: int = 20
    test_stream_s: float = 60.0
    tune: bool = _h(True, "keep the default smoothing (no validation streams, no stream test)")
    init_from: Path | None = _h(None, "go on training from this hark-trained model (NAME.onnx "
                                "or NAME.keras, with NAME.json beside it): its weights, "
                                "normalisation and architecture; same --arch and labels")
    max_minutes: float | None = _h(None, "stop after the first epoch that ends past this many "
                                   "minutes of fitting (best weights kept; the result then "
                                   "depends on the machine's speed; default: no limit)")
    frontend: str = _h("default", "default: the architecture's own features; embedding: the "
                       "frozen speech-embedding backbone (Google speech_embedding via "
                       "openWakeWord, 96 dims every 80 ms) under a small head, --arch lr, dense "
                       "or conv")
    windows_per_clip: int = _h(3, "--frontend embedding: training windows made from each clip "
                               "(the word at a random place in the window, noise, gain; the "
                               "backbone runs once per window, not per epoch; default 3)")
    extra_data: Path | None = _h(None, "--frontend embedding: more training clips, every clip "
                                 "of this Speech Commands tree (e.g. an espeak-ng tree; its "
                                 "splits are not used for validation)")
    embed_cache: Path | None = _h(None, "--frontend embedding: folder of embedded training "
                                  "windows, shared by runs on the same data (default "
                                  "OUT/embeddings)")
    val_voices: str | None = _h(None, "--frontend embedding: move the training clips of these "
                                "voices (comma-separated voice-id prefixes, e.g. flite-rms) to "
                                "validation: a voice held out in turn for the rule that picks "
                                "sources and heads")
    head_streams: int = _h(0, "--frontend embedding: also train on the sliding windows of this "
                           "many 30 s word streams built from the training words (a window is "
                           "a word when the word lies whole inside it, else _unknown_ or "
                           "_silence_): the head learns partial words and neighbours as a "
                           "stream shows them (default 0: clip windows only)")
    sources: str | None = _h(None, "--frontend embedding: train only on clips of these engines "
                             "(comma-separated: espeak, flite, kokoro; default: every clip)")
    prefetch: bool = _h(True, "build each epoch's data before its fit, not in a worker process "
                        "while the previous epoch trains")
    overrides: dict[str, Any] = field(default_factory=dict)
    verbose: int | None = None

    @property
    def model_name(self) -> str:
        """NAME of OUT/NAME.onnx: commands / sounds / commands-cnn / commands-ARCH."""
        if self.name:
            return self.name
        if self.frontend == "embedding":
            return "commands-emb" if self.arch == "dense" else f"commands-emb-{self.arch}"
        if self.arch == "rnn":
            return self.task
        return "commands-cnn" if self.arch == "cnn" else f"commands-{self.arch}"
