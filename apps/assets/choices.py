from django.db import models


class AssetKind(models.TextChoices):
    PV = "pv", "Rooftop PV"
    BATTERY = "battery", "Battery"
    WIND = "wind", "Small wind"
    EV_CHARGER = "ev_charger", "EV charger"
    HEAT_PUMP = "heat_pump", "Heat pump"


# Kinds that store energy and so have a capacity in Wh.
STORAGE_KINDS = frozenset({AssetKind.BATTERY, AssetKind.EV_CHARGER})
