"""drf-spectacular's view of the service token (imported when eid.api is ready)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "eid.api.auth.ServiceTokenAuthentication"
    name = "serviceToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A service token: `Authorization: Bearer eid_...`. Made with "
                           "`manage.py create_api_token NAME [--read-only] [--owner USERNAME]` or in the admin; "
                           "the key is shown once.",
        }
