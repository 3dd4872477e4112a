from django.db import models


class MeterRole(models.TextChoices):
    """``main``: the bidirectional meter at a grid connection point, which settlement counts.
    ``sub``: behind a main meter (EV, PV generation, heat pump): dashboards, forecasts and
    demand response only, never added into settlement."""

    MAIN = "main", "Main (settlement)"
    SUB = "sub", "Sub-meter"
