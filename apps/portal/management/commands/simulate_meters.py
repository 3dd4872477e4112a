"""``simulate_meters``: the demo community's meters, posting through the real HTTP API.

Each demo meter posts its own readings with its own device key (the simulator issues the
demo meters new keys when it starts: it plays their role). At every interval boundary of the
business clock it posts the reading that just completed; on start it first catches up from
each meter's latest stored reading. A share of readings arrives late (held back one to four
intervals), twice, or never (a gap the portal estimates), as real meters do.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import random
import time
from typing import Any
from urllib.parse import urlparse

from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError

from apps.common import clock
from apps.common.intervals import interval_seconds
from apps.meters import store
from apps.meters.services import MAX_READINGS_PER_REQUEST, meter_key_rotate
from apps.portal.simulator import Household, households_load, readings_simulate


class Command(BaseCommand):
    help = "Simulate the demo meters: household load, PV, batteries, EVs; post readings through the API."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--serial-prefix", default="DEMO-", help="Simulate meters whose serial starts so.")
        parser.add_argument("--late-share", type=float, default=0.03, help="Readings held back 1-4 intervals.")
        parser.add_argument("--duplicate-share", type=float, default=0.02, help="Readings sent twice.")
        parser.add_argument("--missing-share", type=float, default=0.005, help="Readings never sent.")
        parser.add_argument("--catch-up-days", type=float, default=3, help="At most this much history on start.")
        parser.add_argument("--once", action="store_true", help="Catch up to now, post, and exit.")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        self.rng = random.Random(options["seed"])  # noqa: S311 - a simulation, not a secret
        self.options = options
        self.step = interval_seconds()
        url = urlparse(options["base_url"])
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.keys: dict[str, str] = {}
        self.pending: dict[str, list[tuple[int, dict]]] = {}  # serial -> [(due boundary, reading)]
        self._wait_for_server()
        while True:
            boundary = store.to_ts(clock.now()) // self.step * self.step
            try:
                homes = [
                    h
                    for h in households_load(at=self._at(boundary))
                    if h.main.serial.startswith(options["serial_prefix"])
                ]
                sent = self._tick(homes, boundary)
            except DatabaseError as exc:
                # A busy SQLite file or a restarting database: real meters simply try again later.
                self.stderr.write(f"simulate_meters: {exc}; trying again at the next interval")
                homes, sent = [], 0
            self.stdout.write(
                f"simulate_meters: {len(homes)} households, {sent} readings posted up to {self._iso(boundary)}"
            )
            if options["once"]:
                return
            next_boundary = boundary + self.step
            # Meters report a few seconds after the boundary, as real ones do.
            delay = next_boundary - clock.now().timestamp() + self.rng.uniform(2, 8)
            time.sleep(max(1.0, delay))

    def _at(self, ts: int) -> dt.datetime:
        return store.EPOCH + dt.timedelta(seconds=ts)

    def _iso(self, ts: int) -> str:
        return clock.format_instant(self._at(ts))

    def _tick(self, homes: list[Household], boundary: int) -> int:
        earliest = boundary - int(self.options["catch_up_days"] * 86400)
        groups: dict[int, list[Household]] = {}
        for home in homes:
            for meter in (home.main, home.pv_meter, home.ev_meter):
                if meter is not None and meter.serial not in self.keys:
                    self.keys[meter.serial] = meter_key_rotate(meter=meter)
            last = self._last_ts(home)
            start = max(
                last if last is not None else boundary - self.step, earliest, store.to_ts(home.main.installed_at)
            )
            if start < boundary:
                groups.setdefault(start, []).append(home)
        sent = 0
        outgoing: dict[str, list[dict]] = {}
        for start, group in groups.items():
            serial_of = {m.pk: m.serial for h in group for m in (h.main, h.pv_meter, h.ev_meter) if m is not None}
            simulated = readings_simulate(
                households=group,
                start=self._at(start),
                intervals=(boundary - start) // self.step,
                step_seconds=self.step,
            )
            for home in group:
                if self._last_ts(home) is None:  # a fresh meter opens its registers at the start
                    for meter in (home.main, home.pv_meter, home.ev_meter):
                        if meter is not None:
                            register = home.registers[meter.pk]
                            outgoing.setdefault(meter.serial, []).append(
                                {"ts": self._iso(start), "import_wh": register[0], "export_wh": register[1]}
                            )
            for mid, readings in simulated.items():
                serial = serial_of[mid]
                for reading in readings:
                    self._route(serial, reading, boundary, outgoing)
        for serial, queue in self.pending.items():
            due = [r for when, r in queue if when <= boundary]
            self.pending[serial] = [(when, r) for when, r in queue if when > boundary]
            outgoing.setdefault(serial, []).extend(due)
        for serial, readings in outgoing.items():
            for chunk in range(0, len(readings), MAX_READINGS_PER_REQUEST):
                sent += self._post(serial, readings[chunk : chunk + MAX_READINGS_PER_REQUEST])
        return sent

    def _route(self, serial: str, reading: dict, boundary: int, outgoing: dict[str, list[dict]]) -> None:
        """Send now, later, twice or never, in the configured shares (only for the latest hour:
        history caught up on start goes as it is)."""
        ts = store.to_ts(clock.parse_instant(reading["ts"]))
        recent = ts > boundary - 3600
        roll = self.rng.random()
        options = self.options
        if recent and roll < options["missing_share"]:
            return
        roll -= options["missing_share"]
        if recent and roll < options["late_share"]:
            self.pending.setdefault(serial, []).append((boundary + self.step * self.rng.randint(1, 4), reading))
            return
        roll -= options["late_share"]
        outgoing.setdefault(serial, []).append(reading)
        if recent and roll < options["duplicate_share"]:
            self.pending.setdefault(serial, []).append((boundary + self.step, reading))

    def _last_ts(self, home: Household) -> int | None:
        from apps.meters.selectors import meters_latest_readings

        latest = meters_latest_readings(meter_ids=[home.main.pk]).get(home.main.pk)
        return store.to_ts(latest[0]) if latest else None

    def _post(self, serial: str, readings: list[dict]) -> int:
        body = json.dumps({"readings": readings})
        headers = {"Authorization": f"Bearer {self.keys[serial]}", "Content-Type": "application/json"}
        for attempt in range(5):
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                conn.request("POST", f"/api/v1/meters/{serial}/readings/", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                conn.close()
            except OSError as exc:
                self.stderr.write(f"simulate_meters: {serial}: {exc}; retrying")
                time.sleep(2 + attempt * 2)
                continue
            if response.status != 200:
                self.stderr.write(f"simulate_meters: {serial}: HTTP {response.status} {data[:200]!r}")
                return 0
            return json.loads(data)["accepted"]
        return 0

    def _wait_for_server(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
                conn.request("GET", "/api/v1/schema/")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(1)
        self.stderr.write("simulate_meters: the portal does not answer; trying anyway")
