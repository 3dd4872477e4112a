from django.urls import path

from apps.meters import views

urlpatterns = [
    path("energy/", views.member_energy, name="member-energy"),
    path("meters/<meter_serial:serial>/", views.meter_detail, name="meter-detail"),
    path("operator/meters/", views.operator_meters, name="operator-meters"),
]
