from django.urls import path

from apps.settlement.api import views

urlpatterns = [
    path("me/balance/", views.BalanceView.as_view(), name="api-me-balance"),
    path("me/settlements/", views.SettlementListView.as_view(), name="api-me-settlements"),
]
