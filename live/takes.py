"""Prompted takes: say each word N times, one utterance per take, re-take and skip on request.

`hark enroll` asks for words one take at a time. `TakeSession` holds the prompts and the takes
so far; its commands (accept, retake, skip_word, quit) take a lock, because in the terminal UI
the keys arrive on the UI thread while `record` runs in a worker. `record` drains a block source
through an UtteranceDetector and gives each finished utterance to the prompt that was open when
it was heard, so a stream of takes separated by pauses (a person, or a test playing a file into
a virtual microphone) lands one take per prompt without gaps or losses between them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from hark.live.errors import HarkError
from hark.live.utterance import UtteranceDetector


class NoSpeechError(HarkError):
    """Nothing but silence or noise for a whole prompt: the wrong device, or a muted one."""


@dataclass(frozen=True)
class Prompt:
    """What to say next: `word`, take `take` of `takes` (1-based), word `index` of `n_words`."""

    word: str
    take: int
    takes: int
    index: int
    n_words: int

    def text(self) -> str:
        """The line the prompt is shown as."""
        return f"say {self.word!r} (take {self.take}/{self.takes}, word {self.index}/" \
               f"{self.n_words})"


@dataclass(frozen=True)
class RecordedTake:
    """A captured take of a word (mono float32 at the stream rate)."""

    word: str
    take: int  # 1-based, in the order kept (a re-take replaces the one it re-does)
    audio: np.ndarray


class TakeSession:
    """The prompts of one enrolment (words x takes) and the takes kept so far."""

    def __init__(self, words: Iterable[str], takes_per_word: int) -> None:
        self.words = tuple(words)
        if not self.words:
            raise ValueError("no words to prompt for")
        if takes_per_word < 1:
            raise ValueError("takes_per_word must be at least 1")
        self.takes_per_word = takes_per_word
        self._lock = threading.Lock()
        self._takes: list[RecordedTake] = []
        self._word = 0  # index of the word being recorded
        self.skipped: list[str] = []
        self.quit_requested = False
        self.version = 0  # bumped by every change (the UI redraws when it moves)
        self.last_event = ""

    # ---- reading ---------------------------------------------------------------------------------
    def _count(self, word: str) -> int:
        return sum(t.word == word for t in self._takes)

    @property
    def prompt(self) -> Prompt | None:
        """The take to record next; None when every word is done (or skipped) or quit."""
        with self._lock:
            return self._prompt()

    def _prompt(self) -> Prompt | None:
        if self.quit_requested or self._word >= len(self.words):
            return None
        w = self.words[self._word]
        return Prompt(w, self._count(w) + 1, self.takes_per_word, self._word + 1, len(self.words))

    @property
    def done(self) -> bool:
        """Every prompt answered (or skipped), or quit."""
        return self.prompt is None

    def takes(self) -> list[RecordedTake]:
        """The takes kept, in recording order."""
        with self._lock:
            return list(self._takes)

    # ---- commands --------------------------------------------------------------------------------
    def accept(self, audio: np.ndarray) -> Prompt | None:
        """Keep `audio` as the open prompt's take; returns the prompt it answered."""
        with self._lock:
            p = self._prompt()
            if p is None:
                return None
            self._takes.append(RecordedTake(p.word, p.take, np.asarray(audio, np.float32)))
            if self._count(p.word) >= self.takes_per_word:
                self._word += 1
            self.last_event = f"kept take {p.take}/{p.takes} of {p.word!r}"
            self.version += 1
            return p

    def retake(self) -> RecordedTake | None:
        """Discard the last take kept (of this word, or the previous word's last): say it again."""
        with self._lock:
            if self.quit_requested or not self._takes:
                return None
            last = self._takes.pop()
            self._word = self.words.index(last.word)
            self.skipped = [w for w in self.skipped if w != last.word]
            self.last_event = f"discarded take {last.take} of {last.word!r}: say it again"
            self.version += 1
            return last

    def skip_word(self) -> str | None:
        """Give up on the current word: its takes are dropped, the next word is prompted."""
        with self._lock:
            p = self._prompt()
            if p is None:
                return None
            self._takes = [t for t in self._takes if t.word != p.word]
            self.skipped.append(p.word)
            self._word += 1
            self.last_event = f"skipped {p.word!r}"
            self.version += 1
            return p.word

    def quit(self) -> None:
        """Stop prompting; the caller writes nothing."""
        with self._lock:
            self.quit_requested = True
            self.version += 1


@dataclass
class Meter:
    """What a level meter shows: the last block's level and whether an utterance is open."""

    level_db: float = -100.0
    in_speech: bool = False
    waited_s: float = 0.0  # audio heard since the open prompt began, without a take


def record(session: TakeSession, blocks: Iterable[np.ndarray], sample_rate: int,
           detector: UtteranceDetector | None = None, meter: Meter | None = None,
           on_prompt: Callable[[Prompt], None] | None = None,
           on_take: Callable[[Prompt, float], None] | None = None,
           wait_s: float | None = None, stop: threading.Event | None = None) -> None:
    """Fill `session` from a block source until every prompt is answered, quit, or stop.

    on_prompt(prompt) runs when a prompt opens (the first at once); on_take(prompt, seconds)
    when a take is kept. wait_s: a prompt that hears no utterance in that much audio raises
    NoSpeechError (None: wait for ever, as the UI does: the user can skip or quit).
    """
    det = detector or UtteranceDetector()
    meter = meter or Meter()
    shown: Prompt | None = None
    waited = 0
    for block in _until_done(session, blocks, stop):
        p = session.prompt
        if p is None:
            break
        if p != shown:  # a new prompt (after a take, a re-take or a skip)
            if on_prompt is not None:
                on_prompt(p)
            shown, waited = p, 0
        for utt in det.push(block):
            got = session.accept(utt.audio)
            if got is not None and on_take is not None:
                on_take(got, utt.audio.size / sample_rate)
            waited = 0
        waited += block.size
        meter.level_db, meter.in_speech = det.level_db, det.in_speech
        meter.waited_s = waited / sample_rate
        if wait_s is not None and not det.in_speech and waited > wait_s * sample_rate:
            raise NoSpeechError(
                f"no speech heard for {p.word!r} in {wait_s:g} s (take {p.take}/{p.takes}): is "
                "the right input device selected (hark devices, --device)?")
    p = session.prompt
    if p is not None and not session.quit_requested and (stop is None or not stop.is_set()):
        for utt in det.flush():
            session.accept(utt.audio)
        if session.prompt is not None:
            raise NoSpeechError(f"the input ended before take {p.take}/{p.takes} of {p.word!r}")


def _until_done(session: TakeSession, blocks: Iterable[np.ndarray],
                stop: threading.Event | None) -> Iterable[np.ndarray]:
    for b in blocks:
        if session.done or (stop is not None and stop.is_set()):
            return
        yield b
