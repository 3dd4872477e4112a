"""Meters, their readings, the interval energy derived from them, and rollups for fast pages."""

from apps.meters.models.meters import Meter
from apps.meters.models.readings import IntervalCorrection, IntervalEnergy, Reading, ReadingRejection
from apps.meters.models.rollups import FeederRollup, MemberRollup, MeterRollup, RollupBacklog

__all__ = [
    "FeederRollup",
    "IntervalCorrection",
    "IntervalEnergy",
    "MemberRollup",
    "Meter",
    "MeterRollup",
    "Reading",
    "ReadingRejection",
    "RollupBacklog",
]
