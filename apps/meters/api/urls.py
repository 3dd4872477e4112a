from django.urls import path

from apps.meters.api import views

urlpatterns = [
    path("meters/<meter_serial:serial>/readings/", views.MeterReadingsView.as_view(), name="api-meter-readings"),
    path("readings/bulk/", views.BulkReadingsView.as_view(), name="api-readings-bulk"),
]
