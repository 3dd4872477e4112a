from django.urls import path

from apps.realtime import views

urlpatterns = [path("ticker/", views.ticker, name="ticker")]
