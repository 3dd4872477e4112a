"""The API skeleton: contract error shape, schema and docs."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def _assert_error_shape(body: dict) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def test_unknown_api_path_is_a_json_404():
    response = APIClient().get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    _assert_error_shape(response.json())
    assert response.json()["error"]["code"] == "not_found"


def test_missing_token_is_401():
    response = APIClient().get("/api/v1/me/")
    assert response.status_code == 401
    _assert_error_shape(response.json())


def test_method_not_allowed_keeps_the_shape(api):
    response = api.delete("/api/v1/me/")
    assert response.status_code == 405
    _assert_error_shape(response.json())


def test_schema_and_docs_are_served_without_a_token():
    schema = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/me/" in schema.json()["paths"]
    docs = APIClient().get("/api/v1/docs/")
    assert docs.status_code == 200
    # Swagger UI comes from our own static files, not a CDN.
    import re

    sources = re.findall(r'(?:src|href)="([^"]+)"', docs.content.decode())
    assert sources and all(url.startswith("/static/") for url in sources if url.endswith((".js", ".css"))), sources
    assert "//cdn" not in docs.content.decode().lower()


def test_me_for_a_session_user(client, member):
    client.force_login(member.user)
    response = client.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["member_number"] == member.number
