"""Record genesis requests and their answers per virtual environment; replay and compare them.

httpsrv captures (:class:`Recorder`), the API starts, stops and reads
(:class:`RecordingStore`), ``fox replay`` sends again and compares
(:mod:`kubefox.recording.replay`, :mod:`kubefox.recording.compare`). The
JetStream adapter is :mod:`kubefox.recording.jetstream`, imported by path.
"""

from kubefox.recording.compare import Difference, IgnoreRules, compare, ignore_rules
from kubefox.recording.recorder import Recorder
from kubefox.recording.records import (
    MAX_BODY,
    REDACTED_HEADERS,
    Exchange,
    RecordedRequest,
    RecordedResponse,
    Recording,
    RecordingState,
    capture,
    new_recording_id,
)
from kubefox.recording.replay import ReplayRequest, ReplayResult, replay, replay_request
from kubefox.recording.store import MemoryRecordings, RecordingStore

__all__ = [
    "MAX_BODY",
    "REDACTED_HEADERS",
    "Difference",
    "Exchange",
    "IgnoreRules",
    "MemoryRecordings",
    "RecordedRequest",
    "RecordedResponse",
    "Recorder",
    "Recording",
    "RecordingState",
    "RecordingStore",
    "ReplayRequest",
    "ReplayResult",
    "capture",
    "compare",
    "ignore_rules",
    "new_recording_id",
    "replay",
    "replay_request",
]
