"""System checks for the webhook settings: a bad value fails `manage.py check`, not a delivery."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register

from ..conf import eid_settings


@register(Tags.compatibility)
def webhook_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    networks = eid_settings.EID_WEBHOOK_ALLOWED_NETWORKS or []
    if isinstance(networks, str):
        networks = [networks]
    for value in networks:
        try:
            network = ipaddress.ip_network(str(value).strip(), strict=False)
        except ValueError:
            problems.append(Error(f"EID_WEBHOOK_ALLOWED_NETWORKS: {value!r} is not an address range (CIDR).",
                                  id="eid_webhooks.E001"))
            continue
        if network.prefixlen == 0:
            problems.append(Warning(
                f"EID_WEBHOOK_ALLOWED_NETWORKS allows {network}: every address, so webhooks may reach any "
                "service this server can.", id="eid_webhooks.W001"))
    steps = eid_settings.EID_WEBHOOK_RETRY_SCHEDULE
    try:
        valid = bool(steps) and all(float(s) >= 0 for s in steps)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        problems.append(Error("EID_WEBHOOK_RETRY_SCHEDULE must be a non-empty list of seconds (0 or more).",
                              id="eid_webhooks.E002"))
    jitter = eid_settings.EID_WEBHOOK_RETRY_JITTER
    if not isinstance(jitter, (int, float)) or not 0 <= jitter < 1:
        problems.append(Error("EID_WEBHOOK_RETRY_JITTER must be a fraction from 0 to under 1.", id="eid_webhooks.E003"))
    if not 0 < float(eid_settings.EID_WEBHOOK_TIMEOUT) <= 60:
        problems.append(Error("EID_WEBHOOK_TIMEOUT must be between 0 and 60 seconds.", id="eid_webhooks.E004"))
    return problems
