"""The market loop for real: a Celery worker and beat on Redis and PostgreSQL place automated
orders from members' history, the gate closes, the interval clears and its price is published."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys

import pytest
from channels.layers import get_channel_layer
from django.utils import timezone

from apps.common.clock import format_instant
from apps.market.choices import OrderSource
from apps.market.models import ClearingResult, Order
from apps.realtime import groups
from tests.conftest import ROOT, process_env, wait_for
from tests.factories import member_make, meter_make
from tests.market.conftest import NEXT
from tests.market.history import history_ingest

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

GATE = NEXT - dt.timedelta(minutes=5)
LEAD = dt.timedelta(seconds=20)  # the business clock starts this long before the gate closes


def _start(kind: str, env: dict[str, str], tmp_path) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "energycoop.celery:app", kind, "--loglevel", "INFO"]
    if kind == "worker":
        command += ["--concurrency", "2", "--queues", env["CELERY_TASK_DEFAULT_QUEUE"], "--without-mingle"]
    else:
        command += ["--schedule", str(tmp_path / "beat-schedule")]
    log = open(tmp_path / f"{kind}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


async def _next_cleared(channel_layer, channel: str, timeout: float) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        event = await asyncio.wait_for(channel_layer.receive(channel), timeout=max(remaining, 0.1))
        message = json.loads(event["text"]) if "text" in event else event.get("payload", {})
        if message.get("type") == "market.cleared":
            return message


def test_automated_orders_clear_and_the_price_is_published(transactional_db, celery_queue_name, tmp_path, settings):
    start_clock = GATE - LEAD
    anchor = timezone.now()
    settings.ENERGYCOOP_CLOCK = format_instant(start_clock)
    settings.ENERGYCOOP_CLOCK_ANCHOR = format_instant(anchor)
    history_start = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)
    for index in range(4):
        member = member_make()
        meter, _ = meter_make(member, installed_at=history_start)
        seller = index % 2 == 0
        history_ingest(
            meter,
            start=history_start,
            end=NEXT - dt.timedelta(minutes=15),
            net_wh=(lambda at: -600) if seller else (lambda at: 450),
            now=start_clock,
        )

    channel_layer = get_channel_layer()
    channel = asyncio.run(channel_layer.new_channel())
    asyncio.run(channel_layer.group_add(groups.MARKET, channel))

    env = process_env(
        CELERY_TASK_DEFAULT_QUEUE=celery_queue_name,
        ENERGYCOOP_CLOCK=format_instant(start_clock),
        ENERGYCOOP_CLOCK_ANCHOR=format_instant(anchor),
        AUTOTRADE_SECONDS="2",
        AUTOTRADE_INTERVALS="2",
        HEARTBEAT_SECONDS="60",
    )
    worker = _start("worker", env, tmp_path)
    beat = _start("beat", env, tmp_path)
    try:
        wait_for(
            lambda: Order.objects.filter(interval__start=NEXT, source=OrderSource.AUTO).count() == 4,
            timeout=60,
            message="automated orders for the next interval",
        )
        wait_for(
            lambda: ClearingResult.objects.filter(interval__start=NEXT).exists(),
            timeout=90,
            message="the interval to clear after its gate closed",
        )
        result = ClearingResult.objects.get(interval__start=NEXT)
        assert result.volume_wh == 900 and result.trades_count >= 2
        # Sellers ask 0.1275 and buyers bid 0.2425 by default: the midpoint is 0.1850.
        assert str(result.price) == "0.18500"
        message = asyncio.run(_next_cleared(channel_layer, channel, timeout=20))
        assert message["interval_start"] == format_instant(NEXT)
        assert message["price"] == "0.18500" and message["volume_wh"] == 900
    finally:
        for proc in (beat, worker):
            proc.terminate()
        for proc in (beat, worker):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        print((tmp_path / "worker.log").read_text()[-3000:])
