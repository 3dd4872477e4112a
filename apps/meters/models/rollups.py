"""Hourly and daily energy per meter, per member and per feeder, for fast pages.

Kept current incrementally: each ingest leaves a :class:`RollupBacklog` row naming the meter
and the time span it touched, and ``rollups_refresh`` brings only those buckets up to date
(never history). Member and feeder rollups sum main meters only, like settlement; a sub-meter's
energy is in its own meter rollups.
"""

from __future__ import annotations

from django.db import models

from apps.grid.models import Feeder
from apps.members.models import Member
from apps.meters.choices import RollupGrain
from apps.meters.models.meters import Meter


class RollupBase(models.Model):
    grain = models.CharField(max_length=4, choices=RollupGrain.choices)
    bucket_start = models.DateTimeField(help_text="UTC hour, or midnight of the coop's local day (as UTC).")
    import_wh = models.BigIntegerField(default=0)
    export_wh = models.BigIntegerField(default=0)
    # Plain integers: the PostgreSQL drain adds signed deltas in an upsert, and a CHECK would
    # judge the delta row before it meets the stored one.
    intervals = models.IntegerField(default=0, help_text="Intervals with energy in this bucket.")
    estimated_intervals = models.IntegerField(default=0, help_text="Of those, how many were estimated.")

    class Meta:
        abstract = True


# Each scope's foreign key has no index of its own: the unique constraint (scope, grain,
# bucket_start) leads with it and serves every look-up, and one index fewer per upsert. Nor a
# database-level constraint: rollups are derived, written only by the rollup job from meters
# joined in the same statement, and a batch writes some 300,000 rows whose deferred foreign-key
# checks cost 2 s at commit (of a 6 s drain of a million intervals). Meters, members and feeders
# are never deleted (PROTECT).


class MeterRollup(RollupBase):
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, db_constraint=False, db_index=False, related_name="+")

    class Meta:
        ordering = ["meter", "grain", "bucket_start"]
        constraints = [
            models.UniqueConstraint(fields=["meter", "grain", "bucket_start"], name="meter_rollup_unique"),
        ]

    def __str__(self) -> str:
        return f"meter {self.meter_id} {self.grain} {self.bucket_start:%Y-%m-%d %H:%M}"


class MemberRollup(RollupBase):
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_constraint=False, db_index=False, related_name="+")

    class Meta:
        ordering = ["member", "grain", "bucket_start"]
        constraints = [
            models.UniqueConstraint(fields=["member", "grain", "bucket_start"], name="member_rollup_unique"),
        ]

    def __str__(self) -> str:
        return f"member {self.member_id} {self.grain} {self.bucket_start:%Y-%m-%d %H:%M}"


class FeederRollup(RollupBase):
    feeder = models.ForeignKey(Feeder, on_delete=models.PROTECT, db_constraint=False, db_index=False, related_name="+")

    class Meta:
        ordering = ["feeder", "grain", "bucket_start"]
        constraints = [
            models.UniqueConstraint(fields=["feeder", "grain", "bucket_start"], name="feeder_rollup_unique"),
        ]

    def __str__(self) -> str:
        return f"feeder {self.feeder_id} {self.grain} {self.bucket_start:%Y-%m-%d %H:%M}"


class RollupBacklog(models.Model):
    """Interval energy of ``meter`` changed in [``start``, ``end``): its rollups are due.

    Written in the same transaction as the interval energy, drained by ``rollups_refresh``.
    """

    meter_id = models.BigIntegerField()
    start = models.DateTimeField()
    end = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"meter {self.meter_id} [{self.start:%Y-%m-%d %H:%M}, {self.end:%Y-%m-%d %H:%M})"
