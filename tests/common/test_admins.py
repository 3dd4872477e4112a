"""DJANGO_ADMINS: who is emailed when a request fails with a server error."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import path

from energycoop.settings import env


def _boom(request):
    raise RuntimeError("boom in a view")


urlpatterns = [path("boom/", _boom)]


def test_admins_are_parsed_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_ADMINS", "Ops Desk <ops@coop.example>, it@coop.example")
    assert env.get_admins("DJANGO_ADMINS") == [("Ops Desk", "ops@coop.example"), ("it@coop.example", "it@coop.example")]
    monkeypatch.delenv("DJANGO_ADMINS")
    assert env.get_admins("DJANGO_ADMINS") == []


def test_an_entry_that_is_not_an_address_is_refused(monkeypatch):
    monkeypatch.setenv("DJANGO_ADMINS", "ops@coop.example, nobody")
    with pytest.raises(ImproperlyConfigured, match="nobody"):
        env.get_admins("DJANGO_ADMINS")


@pytest.mark.urls(__name__)
def test_a_server_error_is_mailed_to_the_admins(settings, db):
    settings.DEBUG = False
    settings.ADMINS = [("Ops Desk", "ops@coop.example")]
    settings.SERVER_EMAIL = "portal@coop.example"
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@coop.example"] and message.from_email == "portal@coop.example"
    assert "boom in a view" in message.body
