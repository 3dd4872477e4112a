"""Pages, accounts, admin and the versioned API."""

from django.contrib import admin
from django.urls import include, path

from apps.common.views import api_not_found

urlpatterns = [
    path("", include("apps.portal.urls")),
    path("", include("apps.members.urls")),
    path("", include("apps.meters.urls")),
    path("", include("apps.market.urls")),
    path("", include("apps.settlement.urls")),
    path("", include("apps.realtime.urls")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("energycoop.api_urls")),
]

handler404 = "apps.common.views.page_not_found"

__all__ = ["api_not_found", "handler404", "urlpatterns"]
