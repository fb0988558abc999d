"""Episodes, the replay, segment sampling and the train-time collector
(docs/protocol.md#episodes-and-the-replay)."""

from rem.data.collector import Collector, CollectStats
from rem.data.episode import Episode
from rem.data.replay import Replay
from rem.data.sampler import SegmentSampler, batch_to_device

__all__ = ["CollectStats", "Collector", "Episode", "Replay", "SegmentSampler", "batch_to_device"]
