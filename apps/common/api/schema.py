"""OpenAPI descriptions of the API's bearer keys (personal tokens, device keys)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class PersonalTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.members.api.authentication.PersonalTokenAuthentication"
    name = "personalToken"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {"type": "http", "scheme": "bearer", "description": "A personal access token (ecp_…)."}


class DeviceKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apps.meters.api.authentication.DeviceKeyAuthentication"
    name = "deviceKey"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {"type": "http", "scheme": "bearer", "description": "A meter's device key (ecm_…), readings only."}
