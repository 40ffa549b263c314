"""Schemathesis hooks for scripts/schemathesis.sh.

depotd runs as root there, and a pool may be made at any absolute path with
createParents: every generated pool path is moved under the run's scratch
directory (DEPOT_SANDBOX), so the fuzzer never makes directories elsewhere on
the machine. The path stays what the document allows (absolute, no '.' or
'..' components), so no check is weakened by it.
"""
import os

import schemathesis

SANDBOX = os.environ["DEPOT_SANDBOX"]


@schemathesis.hook
def map_body(ctx, body):
    operation = ctx.operation
    if (
        operation is not None
        and operation.method.upper() == "POST"
        and operation.path == "/v1/pools"
        and isinstance(body, dict)
        and isinstance(body.get("path"), str)
        and body["path"].startswith("/")
    ):
        body["path"] = SANDBOX + body["path"]
    return body
