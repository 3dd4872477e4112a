from django.db import models


class MeterRole(models.TextChoices):
    """``main``: the bidirectional meter at a grid connection point, which settlement counts.
    ``sub``: behind a main meter (EV, PV generation, heat pump): dashboards, forecasts and
    demand response only, never added into settlement."""

    MAIN = "main", "Main (settlement)"
    SUB = "sub", "Sub-meter"


class RejectionCode(models.TextChoices):
    """Why a reading was refused (CONTRACT.md, Readings). Stable: meters and head-ends parse them."""

    INVALID = "invalid", "Malformed item"
    NOT_ON_BOUNDARY = "not_on_boundary", "Not on the interval grid"
    FUTURE = "future", "In the future"
    BEFORE_INSTALLATION = "before_installation", "Before the meter was installed"
    REGISTER_ROLLBACK = "register_rollback", "Register went backwards"
    SPIKE = "spike", "More energy than the connection can carry"
    CONFLICT = "conflict", "Differs from the stored reading"


class RollupGrain(models.TextChoices):
    """Hourly buckets are UTC hours; daily buckets are days in the coop's time zone."""

    HOUR = "hour", "Hour"
    DAY = "day", "Day"
