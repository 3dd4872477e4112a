"""Sign-up, email verification, applicant approval and MFA login, through the real pages."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY, format_hotp_value, hotp_value
from django.core import mail
from django.test import Client
from django.urls import reverse

from apps.members.choices import MemberStatus, Role
from apps.members.models import Member, MemberStatusChange
from tests.factories import PASSWORD, member_make

pytestmark = pytest.mark.django_db


def _signup(client: Client, email: str) -> None:
    response = client.post(reverse("account_signup"), {"email": email, "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302, response.content


def _confirmation_link(email: str) -> str:
    message = next(m for m in mail.outbox if email in m.to)
    match = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_signup_creates_an_unverified_applicant_and_sends_a_verification_email(client):
    _signup(client, "new@example.org")

    member = Member.objects.get(user__email="new@example.org")
    assert member.status == MemberStatus.APPLICANT
    assert member.number.isdigit()
    assert not EmailAddress.objects.get(email="new@example.org").verified
    assert _confirmation_link("new@example.org")
    assert MemberStatusChange.objects.filter(member=member, to_status=MemberStatus.APPLICANT).count() == 1


def test_login_is_refused_until_the_email_is_verified(client):
    _signup(client, "late@example.org")
    client.logout()
    response = client.post(reverse("account_login"), {"login": "late@example.org", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    assert "_auth_user_id" not in client.session

    link = _confirmation_link("late@example.org")
    assert client.post(link).status_code == 302
    assert EmailAddress.objects.get(email="late@example.org").verified
    client.logout()
    response = client.post(reverse("account_login"), {"login": "late@example.org", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"]


def test_an_operator_approves_an_applicant_in_the_admin(client):
    applicant = member_make(status=MemberStatus.APPLICANT)
    operator = member_make(role=Role.OPERATOR)
    client.force_login(operator.user)

    changelist = reverse("admin:members_member_changelist")
    response = client.post(changelist, {"action": "approve", "_selected_action": [applicant.pk]})

    assert response.status_code == 302
    applicant.refresh_from_db()
    assert applicant.status == MemberStatus.ACTIVE
    assert applicant.joined_at is not None
    change = applicant.status_changes.last()
    assert (change.from_status, change.to_status, change.changed_by) == ("applicant", "active", operator.user)


def test_a_plain_member_cannot_reach_the_admin(client):
    member = member_make()
    client.force_login(member.user)
    response = client.get(reverse("admin:members_member_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response.url


def test_a_billing_user_has_no_admin_access(client):
    billing = member_make(role=Role.BILLING)
    assert not billing.user.is_staff
    client.force_login(billing.user)
    assert client.get(reverse("admin:index")).status_code == 302


def test_operator_admin_is_limited(client):
    operator = member_make(role=Role.OPERATOR)
    client.force_login(operator.user)
    assert client.get(reverse("admin:members_member_changelist")).status_code == 200
    assert client.get(reverse("admin:meters_meter_changelist")).status_code == 200
    # Users' credentials and permission groups stay with admins.
    assert client.get(reverse("admin:members_user_changelist")).status_code == 403
    assert client.get(reverse("admin:auth_group_changelist")).status_code == 403


def _login(client: Client, email: str, password: str = PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def test_totp_activation_then_login_needs_the_code_and_recovery_codes_work(client):
    member = member_make()
    email = member.user.email
    assert _login(client, email).status_code == 302

    # Activate TOTP through the page, as a member would with an authenticator app; allauth
    # first asks for the password again (reauthentication) before a security change.
    response = client.get(reverse("mfa_activate_totp"))
    if response.status_code == 302 and reverse("account_reauthenticate") in response.url:
        assert client.post(response.url, {"password": PASSWORD}).status_code == 302
        response = client.get(reverse("mfa_activate_totp"))
    assert response.status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    import time

    counter = int(time.time()) // 30
    response = client.post(reverse("mfa_activate_totp"), {"code": format_hotp_value(hotp_value(secret, counter))})
    assert response.status_code == 302, response.content
    assert Authenticator.objects.filter(user=member.user, type=Authenticator.Type.TOTP).exists()
    recovery = Authenticator.objects.get(user=member.user, type=Authenticator.Type.RECOVERY_CODES)
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

    codes = RecoveryCodes(recovery).get_unused_codes()
    assert len(codes) >= 8

    client.post(reverse("account_logout"))
    # Password alone is not enough now: the login stops at the second factor.
    response = _login(client, email)
    assert response.status_code == 302 and response.url == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session
    response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    response = client.post(reverse("mfa_authenticate"), {"code": codes[0]})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(member.user.pk)

    # A recovery code works once.
    client.post(reverse("account_logout"))
    _login(client, email)
    response = client.post(reverse("mfa_authenticate"), {"code": codes[0]})
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_login_with_a_totp_code(client):
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    member = member_make()
    secret = generate_totp_secret()
    TOTP.activate(member.user, secret)
    response = _login(client, member.user.email)
    assert response.url == reverse("mfa_authenticate")
    import time

    code = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
    response = client.post(reverse("mfa_authenticate"), {"code": code})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(member.user.pk)


def test_operators_read_the_market_settlement_and_ledger_and_set_tariffs(client):
    operator = member_make(role=Role.OPERATOR)
    client.force_login(operator.user)
    for name in (
        "admin:market_tariffschedule_add",
        "admin:market_dynamicprice_changelist",
        "admin:market_order_changelist",
        "admin:settlement_membersettlement_changelist",
        "admin:ledger_transaction_changelist",
    ):
        assert client.get(reverse(name)).status_code == 200, name
