"""The library's REST API for storage pipelines: recordings by the pipeline's own id (issue 9).

validation (the rules, plain Python), registry (create-or-update in bulk), views, urls. Built on
eid.api's tokens, permissions, throttles, idempotency and error shape.
"""
