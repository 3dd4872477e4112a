"""/api/v1/: each app's api/urls.py, the OpenAPI schema and its docs."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.common.views import api_not_found

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("", include("apps.portal.api.urls")),
    path("", include("apps.meters.api.urls")),
    path("", include("apps.market.api.urls")),
    path("", include("apps.settlement.api.urls")),
    path("", include("apps.ledger.api.urls")),
    # Anything else under /api/v1/ answers in the contract's JSON error shape.
    re_path(r"^.*$", api_not_found),
]
