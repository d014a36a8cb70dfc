"""schemathesis over the site's own OpenAPI document, as the API tests run it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import hypothesis
import schemathesis.openapi


@contextmanager
def api_schema() -> Iterator[Any]:
    """The document at /api/schema/, called in-process through the WSGI application."""
    from django.core.signals import request_finished, request_started
    from django.core.wsgi import get_wsgi_application
    from django.db import close_old_connections

    # As Django's test client does: a request must not close the connection the test's transaction is on.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def fuzz(operation: Any, mode: str, key: str, *, max_examples: int,
         prepare: Callable[[Any, list[int]], bool] | None = None) -> list[int]:
    """Generated requests (valid ones, or ones the document says are invalid) with every check:
    never a 500, status, content type, headers and body as documented, invalid input refused.
    Returns the statuses seen. `prepare(case, seen)` may adjust a case, or return False to skip it."""
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
              response_schema_conformance, negative_data_rejection]
    seen: list[int] = []

    @hypothesis.given(case=operation.as_strategy(GenerationMode(mode)))
    @hypothesis.settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
                         phases=[hypothesis.Phase.generate], suppress_health_check=list(hypothesis.HealthCheck))
    def run(case: Any) -> None:
        # A query parameter with an empty name cannot be sent (the client drops it), so the request
        # that would go out is not the invalid one generated.
        hypothesis.assume("" not in (case.query or {}))
        if prepare is not None and not prepare(case, seen):
            return
        response = case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=checks)
        seen.append(response.status_code)

    run()
    return seen
