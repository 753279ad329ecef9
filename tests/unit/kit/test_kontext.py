"""Kontext: reading the request and the env, and building responses."""

from __future__ import annotations

import pytest

from kubefox.core.events import Category, Event
from kubefox.kit import EnvVar, InvalidError, Reply, Response, UnknownContentTypeError
from tests.unit.kit.fakes import kontext, request_event

JSON = "application/json; charset=UTF-8"
TEXT = "text/plain; charset=UTF-8"
HTML = "text/html; charset=UTF-8"


def _request(**values: object) -> Event:
    return request_event(values=values)


def test_request_line_accessors() -> None:
    """Method, path, URL, host and path suffix come from the event's values."""
    k = kontext(_request(pathSuffix="a/b.css"))

    assert k.method == "GET"
    assert k.path == "/qa/hello"
    assert k.url == "http://localhost:8080/qa/hello"
    assert k.host == "localhost:8080"
    assert k.path_suffix == "a/b.css"


def test_missing_values_read_as_empty() -> None:
    """An event without HTTP values (a KubeFox request) reads as empty, never fails."""
    k = kontext(Event(category=Category.REQUEST, ttl=10**9))

    assert (k.method, k.path, k.url, k.host, k.path_suffix) == ("", "", "", "", "")
    assert k.headers == {}
    assert k.header("Accept") is None
    assert k.query("q") is None
    assert k.query_all("q") == []


def test_headers_are_case_insensitive() -> None:
    """``header`` finds a header whatever the case of the name asked for."""
    k = kontext(_request(header={"Content-Type": ["text/plain"], "X-Many": ["1", "2"]}))

    assert k.header("content-type") == "text/plain"
    assert k.header("CONTENT-TYPE") == "text/plain"
    assert k.header("x-many") == "1"
    assert k.header_all("X-MANY") == ["1", "2"]
    assert k.headers == {"Content-Type": ["text/plain"], "X-Many": ["1", "2"]}
    assert k.header("absent") is None


def test_query_parameters() -> None:
    """``query`` gives the first value, ``query_all`` every value."""
    k = kontext(_request(queryParam={"q": ["a", "b"], "empty": []}))

    assert k.query("q") == "a"
    assert k.query_all("q") == ["a", "b"]
    assert k.query("empty") is None
    assert k.query("Q") is None  # query names are case-sensitive


def test_param_prefers_route_then_query_then_header() -> None:
    """``param`` looks in route params, then the query, then the headers, as upstream."""
    event = request_event(
        params={"id": "route", "n": 42},
        values={
            "queryParam": {"id": ["query"], "page": ["2"]},
            "header": {"Id": ["header"], "Page": ["9"], "Token": ["t"]},
        },
    )
    k = kontext(event)

    assert k.param("id") == "route"
    assert k.param("n") == "42"
    assert k.param("page") == "2"
    assert k.param("token") == "t"
    assert k.param("absent") is None


def test_body_accessors() -> None:
    """The body is available as bytes, text and parsed JSON."""
    k = kontext(request_event(content=b'{"a": [1, 2]}', content_type=JSON))

    assert k.body == b'{"a": [1, 2]}'
    assert k.body_text == '{"a": [1, 2]}'
    assert k.content_type == JSON
    assert k.body_json() == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("content_type", "content"),
    [("text/plain", b'{"a": 1}'), ("", b"{}"), (JSON, b"{not json")],
)
def test_body_json_refuses_non_json(content_type: str, content: bytes) -> None:
    """Reading JSON from another content type, or from broken JSON, is UnknownContentType."""
    k = kontext(request_event(content=content, content_type=content_type))

    with pytest.raises(UnknownContentTypeError):
        k.body_json()


def test_env_reads_declared_values() -> None:
    """``env`` reads a variable by its declaration or name; ``env_str`` renders it as text."""
    who = EnvVar(name="who", required=True)
    k = kontext(_request(), env={"who": "World", "n": 1.5, "flag": True})

    assert k.env(who) == "World"
    assert k.env("n") == 1.5
    assert k.env_str("n") == "1.5"
    assert k.env_str("flag") == "true"
    assert k.env("absent") is None
    assert k.env_str("absent") == ""


def test_remaining_counts_down_and_never_goes_negative() -> None:
    """``remaining`` is the time left before the deadline, floored at zero."""
    assert 4.0 < kontext(_request(), remaining=5.0).remaining() <= 5.0
    assert kontext(_request(), remaining=-1.0).remaining() == 0.0


def test_response_builders_set_content_types() -> None:
    """text, html, json and bytes build responses with upstream's content types."""
    k = kontext(_request())

    assert k.text("hi") == Response(content_type=TEXT, content=b"hi")
    assert k.html("<p>hi</p>", status=201) == Response(
        status=201, content_type=HTML, content=b"<p>hi</p>"
    )
    assert k.json({"msg": "👋"}) == Response(content_type=JSON, content='{"msg":"👋"}'.encode())
    assert k.bytes(b"\x00", "image/png", headers={"cache-control": "no-cache"}) == Response(
        headers={"Cache-Control": ["no-cache"]}, content_type="image/png", content=b"\x00"
    )


def test_response_headers_are_canonical_lists() -> None:
    """Headers given as strings or lists, in any case, end up canonical and listed."""
    response = kontext(_request()).text("x", headers={"x-a": "1", "X-B": ["2", "3"]})

    assert response.headers == {"X-A": ["1"], "X-B": ["2", "3"]}


@pytest.mark.parametrize("status", [99, 600, -1])
def test_response_status_must_be_http(status: int) -> None:
    """A status outside 100-599 is refused when the response is built."""
    with pytest.raises(InvalidError):
        Response(status=status)


@pytest.mark.parametrize(
    ("accept", "content_type", "content"),
    [
        ("application/json", JSON, b'{"msg":"hi"}'),
        ("text/html,application/xhtml+xml", HTML, b"<h1>hi</h1>"),
        ("TEXT/HTML", HTML, b"<h1>hi</h1>"),
        ("text/html, application/json;q=0.9", JSON, b'{"msg":"hi"}'),
        ("*/*", TEXT, b"hi"),
        (None, TEXT, b"hi"),
    ],
)
def test_accepts_negotiates_on_the_accept_header(
    accept: str | None, content_type: str, content: bytes
) -> None:
    """JSON if Accept contains application/json, else HTML if text/html, else text."""
    headers = {"Accept": [accept]} if accept is not None else {}
    k = kontext(_request(header=headers))

    response = k.accepts(json={"msg": "hi"}, html="<h1>hi</h1>", text="hi")

    assert (response.content_type, response.content) == (content_type, content)
    assert response.headers["Vary"] == ["Accept"]


def test_accepts_keeps_extra_headers_and_status() -> None:
    """Headers and status passed to ``accepts`` are kept next to ``Vary``."""
    k = kontext(_request())

    response = k.accepts(json=1, html="", text="t", status=202, headers={"vary": "Origin"})

    assert response.status == 202
    assert response.headers == {"Vary": ["Origin", "Accept"]}


def test_respond_forwards_a_reply() -> None:
    """``respond`` turns a dependency's reply into this handler's response, as it is."""
    reply = Reply(
        Event(
            category=Category.RESPONSE,
            values={"statusCode": 404, "status": "404 Not Found", "header": {"X-A": ["1"]}},
            content_type=TEXT,
            content=b"gone",
        )
    )

    response = kontext(_request()).respond(reply)

    assert response == Response(
        status=404, headers={"X-A": ["1"]}, content_type=TEXT, content=b"gone"
    )


def test_reply_accessors() -> None:
    """A reply exposes status, headers, content type, content, text and JSON."""
    reply = Reply(
        Event(values={"header": {"Content-Type": [JSON]}}, content_type=JSON, content=b"[1]")
    )

    assert reply.status_code == 200
    assert reply.status == "200 OK"
    assert reply.header("content-type") == JSON
    assert reply.content == b"[1]"
    assert reply.text == "[1]"
    assert reply.json() == [1]
