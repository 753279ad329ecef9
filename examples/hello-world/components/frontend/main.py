"""The hello-world frontend: greets whoever the backend names.

Its one route is resolved per virtual environment: ``subPath`` is ``qa`` in
the qa environment and ``prod`` in prod, so ``/qa/hello`` and
``/prod/hello`` reach the same code with different data.
"""

import html

from kubefox.kit import Kit, Kontext, Response

kit = Kit()
backend = kit.component("backend")


@kit.route("Path(`/{{.Vars.subPath}}/hello`)")
async def hello(k: Kontext) -> Response:
    """Ask the backend who to greet, then greet them in the format the client accepts."""
    reply = await k.request(backend)
    msg = f"👋 Hello {reply.text}!"
    k.log.debug("greeting", msg=msg)
    return k.accepts(
        json={"msg": msg},
        html="<!DOCTYPE html><html><head><title>Hello KubeFox</title></head>"
        f"<body><h1>{html.escape(msg)}</h1></body></html>",
        text=msg,
    )


if __name__ == "__main__":
    kit.start()
