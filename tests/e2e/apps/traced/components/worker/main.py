"""A handler that starts OpenTelemetry spans of its own, as any instrumented library would.

``/<subPath>/work`` wraps its work in a ``lookup`` span holding a ``parse``
span; both must land in the request's trace under the handler's span.
"""

from opentelemetry import trace

from kubefox.kit import Kit, Kontext, Response

kit = Kit()
tracer = trace.get_tracer("traced.worker")


@kit.route("Path(`/{{.Vars.subPath}}/work`)")
async def work(k: Kontext) -> Response:
    """Look something up and parse it, each step in a span."""
    with tracer.start_as_current_span("lookup", attributes={"traced.item": "42"}):
        k.log.debug("looking up")  # work inside the lookup, before parsing
        with tracer.start_as_current_span("parse") as parse:
            parse.add_event("parsed", {"traced.fields": 3})
    return k.text("worked")


if __name__ == "__main__":
    kit.start()
