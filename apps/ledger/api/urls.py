from django.urls import path

from apps.ledger.api import views

urlpatterns = [
    path("me/ledger/proofs/", views.MyLedgerProofsView.as_view(), name="api-me-ledger-proofs"),
]
