"""Schemathesis hooks for hrloop's API: constraints its OpenAPI document cannot state."""

import schemathesis


@schemathesis.hook
def filter_body(context, body):
    # A candidate id given twice in one ranking is refused (422, naming the id). JSON Schema can
    # say "no two identical candidates" (uniqueItems, in the document) but not "no two with the
    # same id", so positive examples with a repeated id are not generated.
    operation = context.operation
    if operation is not None and operation.path == "/v1/rank" and isinstance(body, dict):
        candidates = body.get("candidates")
        if isinstance(candidates, list):
            ids = [c.get("id") for c in candidates if isinstance(c, dict)]
            return len(ids) == len(set(map(str, ids)))
    return True
