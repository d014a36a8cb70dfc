"""eid's REST API for partners' pipelines (Django REST framework), an app of its own: "eid.api".

A site that wants it adds "rest_framework" and "eid.api" to INSTALLED_APPS, includes
`eid.api.urls` (at /api/v1/ here) and sets REST_FRAMEWORK as partner_site/settings.py does. The
pieces other API modules build on:

- `auth.ServiceTokenAuthentication`: `Authorization: Bearer <key>`; `request.auth` is the
  `models.ApiToken` row, `request.user` its owner (or a `auth.ServiceUser` for an unscoped token);
- `permissions.HasServiceToken`, `permissions.TokenMayWrite`, `permissions.token_may_act_for`;
- `throttling.TokenRateThrottle`: per token, per scope;
- `idempotency.idempotent`: the `Idempotency-Key` header on a view method;
- `errors`: the one JSON shape of every error, `ApiError`, and the documented error codes.
"""
