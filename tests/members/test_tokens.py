"""Personal access tokens: created on a page, shown once, stored hashed, revocable."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.common.keys import key_hash
from apps.members.choices import MemberStatus
from apps.members.models import ApiToken
from apps.members.services import member_set_status
from tests.conftest import bearer
from tests.factories import member_make, token_make

pytestmark = pytest.mark.django_db


def test_token_is_created_on_the_page_shown_once_and_stored_hashed(client):
    member = member_make()
    client.force_login(member.user)
    response = client.post(reverse("tokens"), {"name": "home battery script"})
    assert response.status_code == 200
    key = re.search(r'<pre class="token">(ecp_[^<]+)</pre>', response.content.decode()).group(1)

    token = ApiToken.objects.get(user=member.user)
    assert token.name == "home battery script"
    assert token.key_hash == key_hash(key)
    assert key not in {token.key_hash, token.prefix}
    # The list page never shows the key again.
    assert key not in client.get(reverse("tokens")).content.decode()

    response = bearer(key).get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["member_number"] == member.number


def test_a_token_needs_a_name(client):
    member = member_make()
    client.force_login(member.user)
    response = client.post(reverse("tokens"), {"name": ""})
    assert response.status_code == 200
    assert not ApiToken.objects.exists()


def test_revoked_token_is_refused(client):
    member = member_make()
    key = token_make(member)
    token = ApiToken.objects.get(user=member.user)
    client.force_login(member.user)
    response = client.post(reverse("token-revoke", args=[token.pk]))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None

    response = bearer(key).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_member_cannot_revoke_someone_elses_token(client):
    owner = member_make()
    key = token_make(owner)
    token = ApiToken.objects.get(user=owner.user)
    intruder = member_make()
    client.force_login(intruder.user)
    client.post(reverse("token-revoke", args=[token.pk]))
    token.refresh_from_db()
    assert token.revoked_at is None
    assert bearer(key).get("/api/v1/me/").status_code == 200


def test_tokens_page_needs_login(client):
    response = client.get(reverse("tokens"))
    assert response.status_code == 302 and reverse("account_login") in response.url


@pytest.mark.parametrize(
    "header",
    ["Bearer ecp_not-a-real-token", "Bearer nonsense", "Bearer", "Bearer a b", "Token abc"],
)
def test_bad_credentials_are_401_in_the_contract_shape(client, header):
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    body = response.json()
    assert set(body["error"]) == {"code", "message", "fields"}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_member_who_left_loses_token_access():
    member = member_make()
    key = token_make(member)
    member_set_status(member=member, to_status=MemberStatus.LEFT, reason="moved away")
    assert bearer(key).get("/api/v1/me/").status_code == 401


def test_token_last_used_is_recorded():
    member = member_make()
    key = token_make(member)
    bearer(key).get("/api/v1/me/")
    assert ApiToken.objects.get(user=member.user).last_used_at is not None
