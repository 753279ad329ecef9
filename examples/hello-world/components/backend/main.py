"""The hello-world backend: answers with the name of whoever is greeted.

It declares one env var, ``who``, and only a default handler: every request
the frontend sends it lands here.
"""

from kubefox.kit import Kit, Kontext, Response

kit = Kit()
who = kit.env_var("who", required=True)


@kit.default
async def say_who(k: Kontext) -> Response:
    """Reply with the value of ``who`` for this request's virtual environment."""
    name = k.env_str(who) or "World"
    k.log.debug("who", who=name)
    return k.text(name)


if __name__ == "__main__":
    kit.start()
