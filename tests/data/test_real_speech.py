"""Real-speech negatives: reserved English prompts are refused; prompts concatenate at 16 kHz."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from hark.models.data.audio import write_wav
from hark.models.data.real_speech import (
    HELD_OUT_LANGUAGE,
    concatenate,
    package_for,
    unpack_package,
)


def test_english_prompts_are_reserved(tmp_path) -> None:
    with pytest.raises(ValueError, match="reserved"):
        package_for("en")
    with pytest.raises(ValueError, match="reserved"):
        unpack_package("asterisk-core-sounds-en-gsm", tmp_path)
    assert package_for(HELD_OUT_LANGUAGE) == "asterisk-core-sounds-ru-wav"


def test_a_complete_cache_is_reused_without_apt(tmp_path) -> None:
    folder = tmp_path / "asterisk-core-sounds-fr-wav"
    folder.mkdir()
    (folder / ".complete").write_text("ok\n")
    assert unpack_package("asterisk-core-sounds-fr-wav", tmp_path) == folder


def test_concatenate_resamples_8k_prompts(tmp_path) -> None:
    a = write_wav(tmp_path / "a.wav", np.full(8000, 0.1, np.float32), 8000)
    b = write_wav(tmp_path / "b.wav", np.full(4000, 0.1, np.float32), 8000)
    out = concatenate([a, b], tmp_path / "all.wav", gap_s=0.5)
    info = sf.info(str(out))
    assert info.samplerate == 16000
    assert abs(info.duration - (1.0 + 0.5 + 0.5 + 0.5)) < 0.01
