"""A component that calls an external service through HTTPAdapters whose headers hold secrets.

It never sees the secrets: the platform resolves the adapters' templates when
it makes the call. ``/<subPath>/remote`` reports what the service answered;
``/<subPath>/broken`` calls an adapter whose service is down.
"""

from kubefox.kit import Kit, Kontext, Response

kit = Kit()
remote = kit.http_adapter("remote")
broken = kit.http_adapter("broken")


@kit.route("Path(`/{{.Vars.subPath}}/remote`)")
async def call_remote(k: Kontext) -> Response:
    """Ask the service whether it let us in, and say what it answered."""
    reply = await k.request(remote, path="/check", query={"from": "caller"})
    k.log.info("remote answered", status=reply.status_code)
    return k.text(f"remote said {reply.status_code}: {reply.text}")


@kit.route("Path(`/{{.Vars.subPath}}/broken`)")
async def call_broken(k: Kontext) -> Response:
    """Call a service that is not there: the error must not show the secret in its URL."""
    reply = await k.request(broken, path="/nothing")
    return k.text(reply.text)


if __name__ == "__main__":
    kit.start()
