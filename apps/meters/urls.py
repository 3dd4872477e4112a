from django.urls import path

from apps.meters import views

urlpatterns = [
    path("meters/<str:serial>/", views.meter_detail, name="meter-detail"),
    path("operator/meters/", views.operator_meters, name="operator-meters"),
]
