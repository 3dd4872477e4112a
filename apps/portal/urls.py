from django.urls import path

from apps.portal import views

urlpatterns = [
    path("", views.home, name="home"),
]
