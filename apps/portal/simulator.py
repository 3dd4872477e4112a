"""A meter simulator for the demo community: believable households, metered like real ones.

Physics in floats, registers in integer Wh. Per household and 15-minute interval:

- household load: the BDEW standard household load profile as demandlib implements it
  (``demandlib.bdew.H25``, the 2025 revision of the household profile, in the coop's local
  time; demandlib's older H0 class does not run on pandas 3), scaled to the household's
  yearly consumption, times log-normal noise;
- PV: pvlib's clear-sky irradiance (Ineichen) at ``COOP_LATITUDE``/``COOP_LONGITUDE``, on a
  tilted south-facing roof, times a day's cloudiness and per-interval weather noise;
- a heat pump in the cold months, a home battery that stores surplus and covers load, and EV
  charging sessions in the evening;
- the main meter sees the net flow (import on 1.8.0, export on 2.8.0), capped at the
  connection's capacity; sub-meters count their device's energy on their single register (PV
  generation, EV charging).

Registers continue from each meter's latest stored reading, so the simulator can stop and
start, backfill history and run live without ever sending a rollback.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import warnings
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

from apps.assets.choices import AssetKind
from apps.common.intervals import coop_zone
from apps.meters import store
from apps.meters.choices import MeterRole
from apps.meters.models import Meter
from apps.meters.selectors import meters_latest_readings

PERFORMANCE_RATIO = 0.82  # inverter, temperature and wiring losses of a rooftop PV system
CAPACITY_HEADROOM = 0.95  # a household's load stays just under its main fuse


@dataclass
class Household:
    """One connection: its main meter, sub-meters and devices, and their running state."""

    main: Meter
    capacity_w: int
    yearly_kwh: float
    pv_w: int = 0
    pv_meter: Meter | None = None
    battery_wh: int = 0
    battery_w: int = 0
    ev_w: int = 0
    ev_meter: Meter | None = None
    heat_pump_w: int = 0
    seed: int = 0
    soc_wh: float = 0.0
    ev_need_wh: float = 0.0
    registers: dict[int, list[int]] = field(default_factory=dict)  # meter id -> [import_wh, export_wh]


def households_load(*, at: dt.datetime) -> list[Household]:
    """Every connection with a main meter in service at ``at``, with its devices and the
    latest stored register values of each of its meters."""
    from apps.assets.models import DerAsset

    meters = list(
        Meter.objects.filter(installed_at__lte=at)
        .exclude(removed_at__lte=at)
        .select_related("connection_point")
        .order_by("pk")
    )
    latest = meters_latest_readings(meter_ids=[m.pk for m in meters])
    assets: dict[int, list[DerAsset]] = {}
    for asset in DerAsset.objects.filter(meter__in=meters).order_by("pk"):
        assets.setdefault(asset.meter_id, []).append(asset)
    by_parent: dict[int, list[Meter]] = {}
    for meter in meters:
        if meter.parent_id:
            by_parent.setdefault(meter.parent_id, []).append(meter)
    households = []
    for meter in meters:
        if meter.role != MeterRole.MAIN:
            continue
        rng = random.Random(meter.pk * 7919)  # noqa: S311 - a simulation, not a secret
        home = Household(
            main=meter,
            capacity_w=meter.connection_point.capacity_w,
            yearly_kwh=rng.uniform(2200, 4800),
            seed=meter.pk,
        )
        for asset in assets.get(meter.pk, []):
            if asset.kind == AssetKind.BATTERY:
                home.battery_wh, home.battery_w = asset.capacity_wh or 0, asset.rated_power_w
            elif asset.kind == AssetKind.HEAT_PUMP:
                home.heat_pump_w = asset.rated_power_w
        for sub in by_parent.get(meter.pk, []):
            for asset in assets.get(sub.pk, []):
                if asset.kind == AssetKind.PV:
                    home.pv_w, home.pv_meter = asset.rated_power_w, sub
                elif asset.kind == AssetKind.EV_CHARGER:
                    home.ev_w, home.ev_meter = asset.rated_power_w, sub
        home.soc_wh = home.battery_wh / 2
        for m in (meter, home.pv_meter, home.ev_meter):
            if m is not None:
                last = latest.get(m.pk)
                home.registers[m.pk] = [last[1], last[2]] if last else [rng.randint(10**6, 2 * 10**7), 0]
                if m.bidirectional and not last:
                    home.registers[m.pk][1] = rng.randint(0, 5 * 10**6)
        households.append(home)
    return households


def _household_profile_kw(starts_utc: list[dt.datetime]) -> np.ndarray:
    """BDEW H25 household load (kW for 1 GWh a year) at each interval start, in local time."""
    import pandas as pd
    from demandlib import bdew

    zone = coop_zone()
    local = [s.astimezone(zone).replace(tzinfo=None) for s in starts_utc]
    first = min(local).replace(hour=0, minute=0)
    days = (max(local) - first).days + 2
    index = pd.date_range(first, periods=days * 96, freq="15min")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        profile = bdew.H25(index)
    values = profile.to_numpy(dtype=float)
    positions = [int((t - first).total_seconds() // 900) for t in local]
    return values[positions]


def _clear_sky_ghi(starts_utc: list[dt.datetime], step_seconds: int) -> np.ndarray:
    """Clear-sky irradiance on a 35°-tilted south roof (W/m²), mid-interval."""
    import pandas as pd
    import pvlib

    latitude, longitude = float(settings.COOP_LATITUDE), float(settings.COOP_LONGITUDE)
    times = pd.DatetimeIndex([s + dt.timedelta(seconds=step_seconds / 2) for s in starts_utc])
    site = pvlib.location.Location(latitude, longitude, tz="UTC")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pvlib 0.16 still calls pandas APIs that pandas 3.1 deprecates
        clear = site.get_clearsky(times, model="ineichen")
        sun = site.get_solarposition(times)
    poa = pvlib.irradiance.get_total_irradiance(
        surface_tilt=35,
        surface_azimuth=180,
        solar_zenith=sun["apparent_zenith"],
        solar_azimuth=sun["azimuth"],
        dni=clear["dni"],
        ghi=clear["ghi"],
        dhi=clear["dhi"],
    )
    return np.nan_to_num(poa["poa_global"].to_numpy(dtype=float), nan=0.0).clip(min=0.0)


def readings_simulate(
    *, households: list[Household], start: dt.datetime, intervals: int, step_seconds: int
) -> dict[int, list[dict]]:
    """Readings (``ts``, ``import_wh``, ``export_wh``) at each boundary after ``start`` for
    ``intervals`` intervals, per meter id, advancing each household's state and registers."""
    if not households or intervals <= 0:
        return {}
    starts = [start + dt.timedelta(seconds=k * step_seconds) for k in range(intervals)]
    profile_kw = _household_profile_kw(starts)
    poa = _clear_sky_ghi(starts, step_seconds)
    hours = step_seconds / 3600
    out: dict[int, list[dict]] = {}
    zone = coop_zone()
    local_hours = [s.astimezone(zone).hour + s.astimezone(zone).minute / 60 for s in starts]
    months = [s.astimezone(zone).month for s in starts]
    for home in households:
        rng = np.random.default_rng([home.seed, int(start.timestamp()) // step_seconds])
        noise = rng.lognormal(mean=0.0, sigma=0.25, size=intervals)
        load_w = profile_kw * home.yearly_kwh / 1_000_000 * 1000 * noise
        # Weather: each day's cloudiness, and passing clouds per interval.
        day_keys = [s.date().toordinal() for s in starts]
        cloud = {d: random.Random(d * 31 + 7).uniform(0.25, 1.0) for d in set(day_keys)}  # noqa: S311
        sky = np.array([cloud[d] for d in day_keys]) * rng.uniform(0.7, 1.0, size=intervals)
        pv_w = home.pv_w * poa / 1000 * PERFORMANCE_RATIO * sky
        for k in range(intervals):
            heat_w = 0.0
            if home.heat_pump_w and months[k] in (11, 12, 1, 2, 3):
                heat_w = home.heat_pump_w * (0.35 + 0.25 * math.cos((local_hours[k] - 6) / 24 * 2 * math.pi))
            ev_w = _ev_step(home, local_hours[k], rng, hours)
            demand_w = load_w[k] + heat_w + ev_w
            net_w = demand_w - pv_w[k]
            net_w += _battery_step(home, net_w, hours)
            limit = home.capacity_w * CAPACITY_HEADROOM
            net_w = max(-limit, min(limit, net_w))
            ts = store.to_ts(starts[k]) + step_seconds
            main = home.registers[home.main.pk]
            main[0] += round(max(net_w, 0.0) * hours)
            main[1] += round(max(-net_w, 0.0) * hours)
            iso = (store.EPOCH + dt.timedelta(seconds=ts)).isoformat().replace("+00:00", "Z")
            out.setdefault(home.main.pk, []).append({"ts": iso, "import_wh": main[0], "export_wh": main[1]})
            for sub, energy_w in ((home.pv_meter, pv_w[k]), (home.ev_meter, ev_w)):
                if sub is not None:
                    register = home.registers[sub.pk]
                    register[0] += round(max(energy_w, 0.0) * hours)
                    out.setdefault(sub.pk, []).append({"ts": iso, "import_wh": register[0], "export_wh": 0})
    return out


def _ev_step(home: Household, local_hour: float, rng: np.random.Generator, hours: float) -> float:
    """EV charging power this interval: a session starts on arrival home, runs until full."""
    if not home.ev_w:
        return 0.0
    if home.ev_need_wh <= 0 and 17 <= local_hour < 17.25 and rng.random() < 0.45:
        home.ev_need_wh = float(rng.uniform(6_000, 30_000))
    if home.ev_need_wh <= 0:
        return 0.0
    power = min(home.ev_w, home.ev_need_wh / hours)
    home.ev_need_wh -= power * hours
    return power


def _battery_step(home: Household, net_w: float, hours: float) -> float:
    """Battery power this interval (positive: charging from surplus adds to net; negative:
    discharging covers load). Self-consumption first, within power and state of charge."""
    if not home.battery_wh:
        return 0.0
    if net_w < 0:  # surplus: charge
        power = min(-net_w, home.battery_w, (home.battery_wh - home.soc_wh) / hours / 0.95)
        home.soc_wh += power * hours * 0.95
        return power
    power = min(net_w, home.battery_w, home.soc_wh / hours)
    home.soc_wh -= power * hours
    return -power


def history_backfill(*, days: int, serial_prefix: str = "", now: dt.datetime | None = None) -> int:
    """Simulate ``days`` of history up to the last interval boundary for every meter with no
    reading yet (from its installation at the earliest) and store it through the bulk ingest
    service, 10,000 readings a call. Meters that already have readings are left to the live
    simulator. Returns the readings accepted."""
    from apps.common import clock
    from apps.common.intervals import interval_seconds
    from apps.meters.services import MAX_READINGS_PER_REQUEST, readings_ingest

    step = interval_seconds()
    now = now or clock.now()
    end = store.EPOCH + dt.timedelta(seconds=store.to_ts(now) // step * step)
    homes = [
        h
        for h in households_load(at=end)
        if h.main.serial.startswith(serial_prefix) and not meters_latest_readings(meter_ids=[h.main.pk])
    ]
    accepted = 0
    by_start: dict[dt.datetime, list[Household]] = {}
    for home in homes:
        start = max(end - dt.timedelta(days=days), home.main.installed_at)
        by_start.setdefault(start, []).append(home)
    for start, group in by_start.items():
        intervals = int((end - start).total_seconds()) // step
        items = []
        first = clock.format_instant(start)
        serials = {}
        for home in group:
            for meter in (home.main, home.pv_meter, home.ev_meter):
                if meter is not None:
                    serials[meter.pk] = meter.serial
                    register = home.registers[meter.pk]
                    items.append(
                        {"serial": meter.serial, "ts": first, "import_wh": register[0], "export_wh": register[1]}
                    )
        for mid, readings in readings_simulate(
            households=group, start=start, intervals=intervals, step_seconds=step
        ).items():
            items.extend({"serial": serials[mid], **r} for r in readings)
        for chunk in range(0, len(items), MAX_READINGS_PER_REQUEST):
            result = readings_ingest(readings=items[chunk : chunk + MAX_READINGS_PER_REQUEST], now=now)
            accepted += result.accepted
    return accepted
