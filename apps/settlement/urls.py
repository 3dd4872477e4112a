from django.urls import path

from apps.settlement import views

urlpatterns = [
    path("settlement/", views.statement, name="settlement"),
    path("settlement/rules/<int:version>/", views.rules, name="settlement-rules"),
    path("settlement/proofs.json", views.proofs_download, name="settlement-proofs"),
]
