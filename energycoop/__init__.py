"""energycoop: the portal of an energy cooperative (wiring only; domain rules live in apps/)."""

from energycoop.celery import app as celery_app

__all__ = ("celery_app",)
