"""One served stream (one WebSocket connection): its bounded queues and its engines.

Two sides, two threads, no lock needed because each field has one writer:
- the event loop side (`Stream.push`, `Outbox`) receives PCM into a bounded pending queue (the
  oldest unprocessed audio is dropped beyond `max_pending` samples; the stream clock still counts
  it) and holds the messages waiting to be sent (bounded: scores and acks are dropped first, a
  client that lets events pile up is closed);
- the compute side (`Segment`, run by the server's one batcher thread) owns the engines: the
  stream's share of the shared BatchedEngines (frame models) and a per-stream Engine for window
  models. After dropped audio the segment is closed (its open events end where the audio
  stopped) and a fresh one starts at the right stream time, as after a gap nothing that came
  before is the audio the model state describes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hark.live.batched import BatchedEngine
from hark.live.engine import Engine, EngineOptions
from hark.live.events import Event, OpenEvent
from hark.live.model import OnnxModel
from hark.live.protocol import Hello, event_message, open_message, scores_message
from hark.live.sources import _Resampler

DROPPABLE = frozenset({"scores", "ack", "dropped"})


class OutboxFull(Exception):
    """The client does not read its messages: events would have to be thrown away."""


class Outbox:
    """Messages waiting for the socket; bounded whatever the client does."""

    def __init__(self, limit: int) -> None:
        self.limit = max(2, int(limit))
        self.items: deque[tuple[str, dict[str, Any]]] = deque()
        self.dropped = 0  # scores/acks thrown away because the client read too slowly

    def put(self, msg: dict[str, Any]) -> None:
        kind = str(msg.get("type"))
        if kind == "dropped" and self.items and self.items[-1][0] == "dropped":
            self.items[-1] = (kind, msg)  # the newest total says it all
            return
        if len(self.items) >= self.limit:
            if kind in DROPPABLE:
                self.dropped += 1
                return
            for i, (k, _) in enumerate(self.items):
                if k in DROPPABLE:
                    del self.items[i]
                    self.dropped += 1
                    break
            else:
                raise OutboxFull(f"the client is not reading its messages ({self.limit} waiting)")
        self.items.append((kind, msg))

    def put_control(self, msg: dict[str, Any]) -> None:
        """The last messages of a stream (summary, error): always queued, past the bound."""
        self.items.append((str(msg.get("type")), msg))

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class Chunk:
    """Samples of one stream at its input rate, starting at input sample `start`."""

    start: int
    samples: np.ndarray

    @property
    def end(self) -> int:
        return self.start + self.samples.size


@dataclass
class Job:
    """What the batcher hands the compute thread for one stream in one tick."""

    stream: Stream
    chunks: list[Chunk]
    end: bool  # the stream is over: run the rest, close the open events


@dataclass
class _Banked:
    """One frame model of a segment, run in a shared BatchedEngine."""

    bank: BatchedEngine
    sid: int
    resampler: Any  # soxr.ResampleStream from the segment rate to the model's, or None
    frames_seen: int = 0
    open_keys: frozenset[tuple[str, float]] = frozenset()


class Segment:
    """A stretch of contiguous audio of one stream and the engine state that hears it.

    The audio goes exactly the way `hark replay` sends a file: resampled (soxr, flushed at the
    end) to the highest rate of the stream's models, then to each model's rate.
    """

    def __init__(self, stream: Stream, start: int) -> None:
        self.stream = stream
        self.start = start  # input sample where it begins (its clock's zero)
        self.consumed = 0  # input samples fed
        self.offset_s = start / stream.sample_rate
        self.resampler = _Resampler(stream.sample_rate, stream.rate)
        self.banked: list[_Banked] = []
        for model in stream.banked_models:
            bank = stream.banks[model.name]
            rs = None
            if model.card.sample_rate != stream.rate:
                import soxr

                rs = soxr.ResampleStream(stream.rate, model.card.sample_rate, 1, dtype="float32")
            self.banked.append(_Banked(bank, bank.add_stream(), rs))
        self.engine: Engine | None = None
        if stream.own_models:
            self.engine = Engine(stream.own_models, stream.options, sample_rate=stream.rate)
        self.messages: list[dict[str, Any]] = []
        self.scores: dict[str, dict[str, float]] = {}
        self.closing = False  # its audio has ended: close() once the banks have run
        self._open: set[tuple[str, str]] = set()  # (model, label) announced as open
        self._ended: set[tuple[str, str]] = set()  # finished since the last take_messages

    @property
    def time_s(self) -> float:
        return (self.start + self.consumed) / self.stream.sample_rate

    def feed(self, x: np.ndarray, last: bool = False) -> None:
        """Input-rate samples in (last: also the resampler's tail)."""
        self.consumed += x.size
        y = self.resampler.process(x)
        if last:
            tail = self.resampler.flush()
            y = np.concatenate((y, tail)) if tail.size else y
        if not y.size:
            return
        for b in self.banked:
            b.bank.feed(b.sid, y if b.resampler is None else b.resampler.resample_chunk(y))
        if self.engine is not None:
            update = self.engine.feed(y)
            self.finished(update.finished)
            self.opened(update.opened)
            if self.stream.hello.scores:
                for name, sc in update.scores.items():
                    self._merge_scores(name, sc)

    def _merge_scores(self, name: str, scores: Mapping[str, float]) -> None:
        """The most of each class since the last scores message (several blocks may run)."""
        old = self.scores.get(name)
        self.scores[name] = dict(scores) if old is None else {
            k: max(v, old.get(k, 0.0)) for k, v in scores.items()}

    def finished(self, events: Sequence[Event]) -> None:
        for ev in events:
            self.stream.events += 1
            self._ended.add((ev.model, ev.label))
            self.messages.append(event_message(ev, self.offset_s))

    def opened(self, events: Sequence[OpenEvent]) -> None:
        self.messages.extend(open_message(e, self.offset_s) for e in events)

    def _still_open(self) -> set[tuple[str, str]]:
        now = {(b.bank.card.name, lb) for b in self.banked for lb in b.bank.smoother(b.sid).active}
        if self.engine is not None:
            now |= {(s.card.name, lb) for s in self.engine.streams for lb in s.smoother.active}
        return now

    def _cancels(self) -> list[dict[str, Any]]:
        """Events announced open that ended too short to keep: the client forgets them."""
        for m in self.messages:
            if m["type"] == "open":
                self._open.add((m["model"], m["label"]))
        now = self._still_open()
        gone = sorted(self._open - now - self._ended)
        self._open &= now
        self._ended = set()
        return [{"type": "cancel", "model": m, "label": lb} for m, lb in gone]

    def after_process(self, events: Sequence[Sequence[Event]], opens: bool = True) -> None:
        """The banks ran: this segment's finished, opened events and scores.

        events: what each bank's process() gave this segment's stream, in `banked` order.
        opens: look for newly opened events now (once a tick: an event that opens and ends
        within the tick's audio is announced by its event alone, as the README says).
        """
        for b, evs in zip(self.banked, events, strict=True):
            self.finished(evs)
            smoother = b.bank.smoother(b.sid)
            active = smoother.active
            if opens and (active or b.open_keys):
                now = [OpenEvent(lb, on, sc, b.bank.card.name)
                       for lb, (on, sc) in sorted(active.items(), key=lambda kv: kv[1][0])]
                self.opened([e for e in now if (e.label, e.onset_s) not in b.open_keys])
                b.open_keys = frozenset((e.label, e.onset_s) for e in now)
            rows = smoother.n_frames - b.frames_seen
            b.frames_seen = smoother.n_frames
            if self.stream.hello.scores:  # as Engine's Update: no new frame, the last values
                top = (smoother.recent_max(rows) if rows > 0 else smoother.newest_row()).tolist()
                self._merge_scores(b.bank.card.name,
                                   dict(zip(b.bank.card.labels, top, strict=True)))

    def close(self) -> None:
        """End of this segment's audio: remove its streams from the banks, close open events."""
        for b in self.banked:
            self.finished(b.bank.remove_stream(b.sid))
        self.banked = []
        if self.engine is not None:
            self.finished(self.engine.close().finished)
            self.engine = None

    def take_messages(self, scores: bool = True) -> list[dict[str, Any]]:
        """What happened since the last call, to send.

        Events and opens model by model in the stream's model order (as `hark replay` writes
        one block's events), then cancels; with `scores` (and the hello's), one scores message
        per model for everything run since the last one.
        """
        rank = self.stream.model_rank
        out = sorted(self.messages, key=lambda m: rank.get(m.get("model", ""), 0))
        out += self._cancels()
        if scores and self.stream.hello.scores:
            t = self.time_s
            out.extend(scores_message(t, name, sc) for name, sc in self.scores.items())
            self.scores = {}
        self.messages = []
        return out


@dataclass
class Stream:
    """One connection's stream: what it asked for, its bounded queues, its engines."""

    id: int
    hello: Hello
    models: list[OnnxModel]
    banks: dict[str, BatchedEngine]  # served model name -> the shared batched engine
    options: EngineOptions
    max_pending: int  # samples at the input rate (--queue-ms)
    outbox: Outbox
    pending: deque[Chunk] = field(default_factory=deque)
    pending_samples: int = 0
    max_pending_seen: int = 0  # the most audio ever waiting (tests: the bound holds)
    received: int = 0  # input samples received: the stream clock, dropped audio included
    processed: int = 0  # input samples the engines have heard or skipped (dropped)
    dropped: int = 0  # input samples dropped in total
    events: int = 0
    ending: bool = False  # no more audio: the batcher runs the rest and closes the stream
    closed: bool = False  # the batcher has closed its engines
    segment: Segment | None = None

    def __post_init__(self) -> None:
        self.sample_rate = self.hello.sample_rate
        self.rate = max(int(m.card.sample_rate) for m in self.models)  # as hark replay feeds
        self.banked_models = [m for m in self.models if m.name in self.banks]
        self.model_rank = {m.name: i for i, m in enumerate(self.models)}
        self.own_models = [m for m in self.models if m.name not in self.banks]

    # ---- event loop side ------------------------------------------------------------------
    def push(self, x: np.ndarray) -> float:
        """Queue received samples; returns the seconds of old audio dropped to make room."""
        if not x.size:
            return 0.0
        self.pending.append(Chunk(self.received, x))
        self.received += x.size
        self.pending_samples += x.size
        lost = 0
        while self.pending_samples > self.max_pending:
            over = self.pending_samples - self.max_pending
            head = self.pending[0]
            if head.samples.size <= over:
                self.pending.popleft()
                n = head.samples.size
            else:
                n = over
                self.pending[0] = Chunk(head.start + n, head.samples[n:])
            self.pending_samples -= n
            lost += n
        self.dropped += lost
        self.max_pending_seen = max(self.max_pending_seen, self.pending_samples)
        return lost / self.sample_rate

    def take(self, limit: int | None) -> list[Chunk]:
        """Whole messages, oldest first, until `limit` samples are reached (all with None).

        A message is one block of the client's (one `hark replay` block for `hark client`), and
        the events of a block come out together: it is split only when it alone is longer than
        `limit`, so a tick takes less than twice `limit`.
        """
        out: list[Chunk] = []
        n = 0
        while self.pending and (limit is None or n < limit):
            head = self.pending[0]
            room = head.samples.size
            if limit is not None and room > limit:
                if n:
                    break
                room = limit
            if room == head.samples.size:
                self.pending.popleft()
                out.append(head)
            else:
                out.append(Chunk(head.start, head.samples[:room]))
                self.pending[0] = Chunk(head.start + room, head.samples[room:])
            n += room
        self.pending_samples -= n
        return out

    # ---- compute side ---------------------------------------------------------------------
    def feed(self, chunks: list[Chunk], end: bool) -> list[Segment]:
        """Feed the chunks; a gap (dropped audio) closes the segment and starts a new one.

        Returns the segments touched, in order; the ones closed here are already closed.
        """
        touched: list[Segment] = []
        for i, chunk in enumerate(chunks):
            seg = self.segment
            if seg is not None and chunk.start != seg.start + seg.consumed:
                seg.feed(np.zeros(0, np.float32), last=True)
                seg.closing = True
                self.segment = seg = None
            if seg is None:
                seg = self.segment = Segment(self, chunk.start)
            if not touched or touched[-1] is not seg:
                touched.append(seg)
            seg.feed(chunk.samples, last=end and i == len(chunks) - 1)
            self.processed = chunk.end
        if end:
            if self.segment is not None:
                if not chunks:
                    self.segment.feed(np.zeros(0, np.float32), last=True)
                if not touched or touched[-1] is not self.segment:
                    touched.append(self.segment)
                self.segment.closing = True
                self.segment = None
            self.processed = self.received
        return touched
