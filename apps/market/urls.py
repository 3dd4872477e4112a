from django.urls import path

from apps.market import views

urlpatterns = [
    path("market/", views.market, name="market"),
    path("market/orders/<int:order_id>/cancel/", views.order_cancel, name="market-order-cancel"),
    path("market/trades/", views.trades, name="market-trades"),
]
