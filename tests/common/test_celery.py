"""A real Celery worker and beat on Redis and PostgreSQL (no eager mode)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from apps.common.models import Heartbeat
from apps.common.tasks import heartbeat
from tests.conftest import ROOT, process_env, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _count() -> int:
    beat = Heartbeat.objects.filter(name="worker").first()
    return beat.count if beat else 0


def test_a_task_sent_through_redis_runs_in_the_worker_process(celery_worker_process, celery_queue_name):
    heartbeat.apply_async(queue=celery_queue_name)
    wait_for(lambda: _count() >= 1, timeout=60, message="the worker to run the heartbeat")
    heartbeat.apply_async(queue=celery_queue_name)
    wait_for(lambda: _count() >= 2, timeout=30, message="a second heartbeat")
    assert Heartbeat.objects.filter(name="worker").count() == 1  # idempotent: one row, a counter


def test_beat_sends_the_schedule_to_the_worker(celery_worker_process, celery_queue_name, tmp_path):
    beat = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "energycoop.celery:app", "beat",
            "--loglevel", "INFO", "--schedule", str(tmp_path / "schedule"),
        ],
        cwd=ROOT,
        env=process_env(CELERY_TASK_DEFAULT_QUEUE=celery_queue_name, HEARTBEAT_SECONDS="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: _count() >= 2, timeout=60, message="two scheduled heartbeats")
    finally:
        beat.terminate()
        beat.wait(timeout=15)
