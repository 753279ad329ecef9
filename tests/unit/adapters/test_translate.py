"""HTTP <-> event mapping (§2.5), kf-* stripping, and the error bodies of §2.6 and §9.4."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubefox.adapters.http import (
    STRIPPED_PARAMS,
    canonical_header,
    error_response,
    kubefox_headers,
    reply_response,
    request_event,
)
from kubefox.core import codec
from kubefox.core.errors import (
    ContentTooLargeError,
    DeadlineExceededError,
    InvalidError,
    KubeFoxError,
    NotFoundError,
    RouteNotFoundError,
    UnavailableError,
)
from kubefox.core.events import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_TEXT,
    TYPE_ERROR,
    TYPE_HTTP,
    Category,
    Component,
    ComponentType,
    Event,
    EventContext,
)
from kubefox.resources import Data, problems_to_yaml, validate_app_deployment
from tests.unit.resources.helpers import hello_world

SOURCE = Component(type=ComponentType.HTTP_ADAPTER, name="httpsrv", hash="dev", id="abcde12345")
TTL = 30 * 1_000_000_000


def scope(
    path: str = "/qa/hello",
    *,
    query: bytes = b"",
    headers: Sequence[tuple[str | bytes, str | bytes]] = (),
    method: str = "GET",
    raw_path: bytes | None = None,
    host: str | None = "localhost:8080",
    server: tuple[str, int] | None = ("127.0.0.1", 8080),
    scheme: str = "http",
) -> dict[str, Any]:
    """An ASGI HTTP scope as uvicorn builds it (header names lower-cased bytes)."""
    raw: list[tuple[bytes, bytes]] = []
    if host is not None:
        raw.append((b"host", host.encode()))
    for name, value in headers:
        raw.append(
            (
                name.lower().encode() if isinstance(name, str) else name,
                value.encode() if isinstance(value, str) else value,
            )
        )
    return {
        "type": "http",
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": raw_path if raw_path is not None else path.encode(),
        "query_string": query,
        "headers": raw,
        "server": server,
        "client": ("127.0.0.1", 50000),
    }


def event_for(s: dict[str, Any], body: bytes = b"") -> Event:
    return request_event(s, body, platform="demo", source=SOURCE, ttl=TTL)


# --- request -> event: context and type -------------------------------------------------


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        (b"kf-dep=hello-world-main&kf-ve=qa", []),
        (b"kubefox-app-deployment=hello-world-main&kubefox-virtual-environment=qa", []),
        (b"", [("kf-dep", "hello-world-main"), ("kf-ve", "qa")]),
        (b"", [("Kubefox-App-Deployment", "hello-world-main"), ("KF-VE", "qa")]),
    ],
)
def test_context_is_read_from_query_or_headers(
    query: bytes, headers: list[tuple[str, str]]
) -> None:
    """kf-dep/kf-ve (long or short, query or header) give the event its context."""
    event = event_for(scope(query=query, headers=headers))

    assert event.context == EventContext(
        platform="demo", virtual_environment="qa", app_deployment="hello-world-main"
    )


def test_query_parameter_is_checked_before_the_header() -> None:
    """For one name, the query parameter wins over the header."""
    event = event_for(scope(query=b"kf-ve=from-query", headers=[("kf-ve", "from-header")]))

    assert event.context.virtual_environment == "from-query"


def test_long_name_is_checked_before_the_short_name() -> None:
    """kubefox-virtual-environment (even as a header) wins over kf-ve in the query."""
    event = event_for(
        scope(query=b"kf-ve=short", headers=[("kubefox-virtual-environment", "long")])
    )

    assert event.context.virtual_environment == "long"


def test_an_empty_value_falls_through_to_the_next_source() -> None:
    """The first non-empty value wins: an empty query parameter does not hide the header."""
    event = event_for(scope(query=b"kf-dep=&kf-ve=", headers=[("kf-dep", "d"), ("kf-ve", "v")]))

    assert (event.context.app_deployment, event.context.virtual_environment) == ("d", "v")


def test_query_names_are_case_sensitive_header_names_are_not() -> None:
    """Query parameters are matched by their lower-case name, headers in any case."""
    event = event_for(scope(query=b"KF-VE=upper", headers=[("KF-DEP", "dep")]))

    assert event.context.virtual_environment == ""
    assert event.context.app_deployment == "dep"
    assert event.values["queryParam"] == {"KF-VE": ["upper"]}


def test_without_context_parameters_only_the_platform_is_set() -> None:
    """No kf-* parameters: the context names the platform alone (release routing)."""
    event = event_for(scope())

    assert event.context == EventContext(platform="demo")


@pytest.mark.parametrize(
    ("query", "headers", "expected"),
    [
        (b"", [], TYPE_HTTP),
        (b"kf-type=io.kubefox.custom", [], "io.kubefox.custom"),
        (b"", [("kubefox-event-type", "io.kubefox.other")], "io.kubefox.other"),
    ],
)
def test_event_type_is_http_unless_overridden(
    query: bytes, headers: list[tuple[str, str]], expected: str
) -> None:
    """kf-type/kubefox-event-type override the genesis event type io.kubefox.http."""
    assert event_for(scope(query=query, headers=headers)).type == expected


def test_the_six_kubefox_parameters_never_reach_the_component() -> None:
    """kf-ve, kf-dep, kf-type and their long names are removed from query, url and headers."""
    query = "&".join(f"{name}=x" for name in sorted(STRIPPED_PARAMS)) + "&a=1&kf-sample=true"
    headers = [(name, "x") for name in sorted(STRIPPED_PARAMS)] + [
        ("kubefox-telemetry-sample", "1")
    ]

    event = event_for(scope(query=query.encode(), headers=headers))

    assert event.values["queryParam"] == {"a": ["1"], "kf-sample": ["true"]}
    assert event.values["url"] == "http://localhost:8080/qa/hello?a=1&kf-sample=true"
    assert set(event.values["header"]) == {"Kubefox-Telemetry-Sample"}


def test_the_query_is_kept_as_sent_when_nothing_is_removed() -> None:
    """Order and escaping of the query string survive into the url value."""
    event = event_for(scope(query=b"b=2&a=%41+b&a=3"))

    assert event.values["url"] == "http://localhost:8080/qa/hello?b=2&a=%41+b&a=3"
    assert event.values["queryParam"] == {"b": ["2"], "a": ["A b", "3"]}


def test_query_parameters_keep_empty_values_and_skip_empty_pairs() -> None:
    """``?a&b=`` holds a and b with empty values; ``&&`` adds nothing."""
    event = event_for(scope(query=b"a&&b="))

    assert event.values["queryParam"] == {"a": [""], "b": [""]}


# --- request -> event: values -------------------------------------------------------------


def test_request_values_describe_the_http_request() -> None:
    """url, host, path, queryParam, method and header values as upstream names them."""
    event = event_for(
        scope(
            "/qa/hello",
            query=b"x=1",
            method="POST",
            headers=[("content-type", "application/json"), ("accept", "*/*")],
        ),
        b'{"a": 1}',
    )

    assert event.category is Category.REQUEST
    assert event.source == SOURCE
    assert event.ttl == TTL
    assert event.content == b'{"a": 1}'
    assert event.content_type == "application/json"
    assert event.values == {
        "url": "http://localhost:8080/qa/hello?x=1",
        "host": "localhost:8080",
        "path": "/qa/hello",
        "queryParam": {"x": ["1"]},
        "method": "POST",
        "header": {"Content-Type": ["application/json"], "Accept": ["*/*"]},
    }


def test_event_id_is_the_one_given() -> None:
    """The adapter picks the id first, so even early errors can name it."""
    event = request_event(scope(), b"", platform="demo", source=SOURCE, ttl=1, event_id="e-1")

    assert event.id == "e-1"


def test_host_is_lower_case_and_keeps_the_port() -> None:
    """``Host: LocalHost:8080`` becomes ``localhost:8080``."""
    assert event_for(scope(host="LocalHost:8080")).values["host"] == "localhost:8080"


def test_without_a_host_header_the_server_address_is_used() -> None:
    """An HTTP/1.0 request without Host is addressed to the server's socket."""
    assert event_for(scope(host=None)).values["host"] == "127.0.0.1:8080"
    assert (
        event_for(scope(host=None, server=("::1", 80))).values["url"].startswith("http://[::1]:80/")
    )


def test_forwarded_host_port_and_proto_win() -> None:
    """X-Forwarded-Host (+ -Port) and X-Forwarded-Proto describe what the client addressed."""
    event = event_for(
        scope(
            headers=[
                ("x-forwarded-host", "Example.COM, proxy.internal"),
                ("x-forwarded-port", "8443"),
                ("x-forwarded-proto", "HTTPS"),
            ]
        )
    )

    assert event.values["host"] == "example.com:8443"
    assert event.values["url"] == "https://example.com:8443/qa/hello"


def test_forwarded_port_is_not_added_to_a_host_with_a_port() -> None:
    """A forwarded host that names its port keeps it."""
    event = event_for(
        scope(headers=[("x-forwarded-host", "example.com:9000"), ("x-forwarded-port", "443")])
    )

    assert event.values["host"] == "example.com:9000"


def test_malformed_forwarded_port_and_proto_are_ignored() -> None:
    """A port that is not a number or a scheme that is not a token changes nothing."""
    event = event_for(
        scope(headers=[("x-forwarded-port", "eighty"), ("x-forwarded-proto", "ht tp")])
    )

    assert event.values["url"] == "http://localhost:8080/qa/hello"


def test_scheme_comes_from_the_connection() -> None:
    """Without X-Forwarded-Proto the scheme is the connection's."""
    assert event_for(scope(scheme="https")).values["url"].startswith("https://")


def test_path_is_decoded_and_url_keeps_the_raw_path() -> None:
    """``path`` is percent-decoded, ``url`` keeps the bytes the client sent."""
    event = event_for(scope("/qa/a b/ü", raw_path=b"/qa/a%20b/%C3%BC"))

    assert event.values["path"] == "/qa/a b/ü"
    assert event.values["url"] == "http://localhost:8080/qa/a%20b/%C3%BC"


def test_headers_use_canonical_keys_keep_every_value_and_leave_host_out() -> None:
    """Header keys are Go's canonical form, repeated headers keep order, Host is not a header."""
    event = event_for(
        scope(headers=[("x-custom-thing", "a"), ("X-CUSTOM-THING", "b"), ("etag", "1")])
    )

    assert event.values["header"] == {"X-Custom-Thing": ["a", "b"], "Etag": ["1"]}


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("content-type", "Content-Type"),
        ("ACCEPT", "Accept"),
        ("x-forwarded-for", "X-Forwarded-For"),
        ("www-authenticate", "Www-Authenticate"),
        ("a--b", "A--B"),
        ("with space", "with space"),
        ("ünicode", "ünicode"),
    ],
)
def test_canonical_header(name: str, canonical: str) -> None:
    """Go's CanonicalMIMEHeaderKey; invalid tokens stay as they are."""
    assert canonical_header(name) == canonical


@pytest.mark.parametrize(
    "s",
    [
        scope(headers=[(b"x-bad", b"\xff\xfe")]),
        scope(headers=[(b"\xc3(", b"value")]),
        scope(query=b"a=\xff"),
        scope(query=b"a=%ff"),
        scope(query=b"%c3%28=1"),
        {"type": "http", "method": "GET", "path": "/", "headers": [(b"x", "not bytes")]},
        {"type": "http", "method": "GET", "path": "/", "headers": [(b"x",)]},
        {"type": "http", "path": "/"},
    ],
)
def test_undecodable_requests_are_invalid(s: dict[str, Any]) -> None:
    """Bytes that are not UTF-8, and malformed scopes, are InvalidError (400)."""
    with pytest.raises(InvalidError):
        event_for(s)


_bytes = st.binary(max_size=40)
_names = st.one_of(
    _bytes,
    st.sampled_from([*sorted(STRIPPED_PARAMS), "host", "x-forwarded-host", "x-forwarded-port"]).map(
        str.encode
    ),
)


@given(
    path=st.text(alphabet=st.characters(), max_size=40),
    raw_path=st.one_of(st.none(), _bytes),
    query=st.one_of(_bytes, st.text(max_size=60).map(str.encode)),
    headers=st.lists(st.tuples(_names, _bytes), max_size=8),
    method=st.text(alphabet=st.characters(), max_size=8),
)
def test_arbitrary_requests_become_events_or_invalid_errors(
    path: str, raw_path: bytes | None, query: bytes, headers: list[tuple[bytes, bytes]], method: str
) -> None:
    """Whatever arrives, translation yields an encodable event or raises InvalidError only."""
    s = {
        "type": "http",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "headers": headers,
        "server": ("127.0.0.1", 8080),
    }

    try:
        event = event_for(s, b"body")
    except InvalidError:
        return

    assert codec.decode(codec.encode(event)) == event
    assert not STRIPPED_PARAMS & {name.lower() for name in event.values["header"]}
    assert not STRIPPED_PARAMS & set(event.values["queryParam"])


# --- reply event -> response ----------------------------------------------------------------


def request() -> Event:
    return event_for(scope(query=b"kf-dep=hello-world-main&kf-ve=qa"))


def header_map(headers: list[tuple[bytes, bytes]]) -> dict[bytes, list[bytes]]:
    found: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        found.setdefault(name, []).append(value)
    return found


def test_reply_maps_to_status_headers_content_type_and_body() -> None:
    """statusCode, header values and content type become the HTTP response."""
    reply = request().reply(
        source=SOURCE,
        content="👋 Hello World!".encode(),
        content_type=CONTENT_TYPE_TEXT,
        values={"statusCode": 201, "header": {"X-Thing": ["a", "b"], "Cache-Control": ["no"]}},
    )

    response = reply_response(reply)

    assert response.status == 201
    assert response.body == "👋 Hello World!".encode()
    assert header_map(response.headers) == {
        b"x-thing": [b"a", b"b"],
        b"cache-control": [b"no"],
        b"content-type": [CONTENT_TYPE_TEXT.encode()],
        b"content-length": [str(len(response.body)).encode()],
    }


def test_reply_without_status_code_is_200() -> None:
    """An absent (or zero) statusCode means 200."""
    assert reply_response(request().reply(source=SOURCE)).status == 200
    assert reply_response(request().reply(source=SOURCE, values={"statusCode": 0})).status == 200


@pytest.mark.parametrize("raw", [404.0, "404"])
def test_reply_status_code_may_be_a_float_or_a_numeric_string(raw: object) -> None:
    """JSON numbers arrive as floats from some SDKs; numeric strings are read too."""
    reply = request().reply(source=SOURCE, values={"statusCode": raw})

    assert reply_response(reply).status == 404


@pytest.mark.parametrize("raw", [42, 600, 404.5, "abc", True, ["200"]])
def test_reply_with_an_impossible_status_is_an_unexpected_error(raw: object) -> None:
    """A status that HTTP cannot carry is the component's bug: unexpected error (500)."""
    reply = request().reply(source=SOURCE, values={"statusCode": raw})

    with pytest.raises(KubeFoxError) as caught:
        reply_response(reply)

    assert type(caught.value) is KubeFoxError


def test_reply_cannot_set_framing_or_kubefox_headers_or_break_the_header_block() -> None:
    """Content-Length, Connection, Kubefox-* and values with newlines are dropped."""
    reply = request().reply(
        source=SOURCE,
        content=b"abc",
        values={
            "header": {
                "Content-Length": ["999"],
                "Transfer-Encoding": ["chunked"],
                "Connection": ["close"],
                "Kubefox-Adapter": ["forged"],
                "X-Injected": ["a\r\nSet-Cookie: evil=1", "fine"],
                "Bad Name": ["x"],
            }
        },
    )

    response = reply_response(reply)

    assert header_map(response.headers) == {b"x-injected": [b"fine"], b"content-length": [b"3"]}


def test_reply_content_type_wins_over_a_content_type_header() -> None:
    """The event's content type is the response's Content-Type; the header value is a fallback."""
    with_type = request().reply(
        source=SOURCE, content_type="text/html", values={"header": {"Content-Type": ["x/y"]}}
    )
    without_type = request().reply(source=SOURCE, values={"header": {"Content-Type": ["x/y"]}})

    assert header_map(reply_response(with_type).headers)[b"content-type"] == [b"text/html"]
    assert header_map(reply_response(without_type).headers)[b"content-type"] == [b"x/y"]


@pytest.mark.parametrize("status", [204, 304])
def test_no_content_statuses_have_no_body(status: int) -> None:
    """204 and 304 are written without a body or Content-Length."""
    reply = request().reply(source=SOURCE, content=b"ignored", values={"statusCode": status})

    response = reply_response(reply)

    assert (response.status, response.body) == (status, b"")
    assert b"content-length" not in header_map(response.headers)


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (RouteNotFoundError(), 404, "route not found"),
        (
            NotFoundError('VirtualEnvironment "x" not found'),
            404,
            'not found: VirtualEnvironment "x" not found',
        ),
        (KubeFoxError("boom"), 500, "unexpected error: boom"),
        (DeadlineExceededError(), 504, "time out"),
        (UnavailableError("no instance"), 503, "unavailable: no instance"),
        (ContentTooLargeError(), 413, "content too large"),
        (InvalidError("event context is invalid"), 400, "invalid: event context is invalid"),
    ],
)
def test_error_event_becomes_its_http_code_and_text(
    error: KubeFoxError, status: int, body: str
) -> None:
    """io.kubefox.error replies are written as status httpCode, body ``msg: cause``, text/plain."""
    reply = codec.error_event(request(), error, source=SOURCE)

    response = reply_response(reply)

    assert response.status == status
    assert response.body.decode() == body
    assert header_map(response.headers)[b"content-type"] == [b"text/plain; charset=utf-8"]


def test_error_with_an_unknown_code_keeps_the_senders_http_code() -> None:
    """A newer peer's error code we do not know still gets the status it asked for."""
    content = msgspec.json.encode({"code": 99, "httpCode": 418, "msg": "teapot", "cause": "short"})
    reply = request().reply(
        source=SOURCE, type=TYPE_ERROR, content=content, content_type=CONTENT_TYPE_JSON
    )

    response = reply_response(reply)

    assert (response.status, response.body) == (418, b"teapot: short")


def test_malformed_error_event_is_an_unexpected_error() -> None:
    """An error event whose content is not an error document is a 500, never a crash."""
    reply = request().reply(source=SOURCE, type=TYPE_ERROR, content=b"{not json")

    response = reply_response(reply)

    assert response.status == 500
    assert response.body.startswith(b"unexpected error: malformed error event")


HELLO_INVALID_BODY = textwrap.dedent(
    """\
    invalid: event context is invalid
    - causes:
      - kind: AppDeployment
        name: hello-world-main
        observedGeneration: 1
        path: $.spec.components.frontend.routes[0].subPath
      message: Var "subPath" not found but is required.
      type: VarNotFound
    """
)


def _invalid_context() -> InvalidError:
    problems = validate_app_deployment(hello_world(), Data(vars={"who": "World"}))
    return InvalidError("event context is invalid", problems_yaml=problems_to_yaml(problems))


def test_invalid_context_body_is_the_message_then_the_yaml_problem_list() -> None:
    """§9.4: ``invalid: event context is invalid`` then one YAML item per problem, keys sorted."""
    response = error_response(_invalid_context())

    assert response.status == 400
    assert response.body.decode() == HELLO_INVALID_BODY
    assert header_map(response.headers)[b"content-type"] == [b"text/plain; charset=utf-8"]


def test_invalid_context_body_survives_a_hop_as_an_error_event() -> None:
    """The problem list travels in the error's details, so a broker's error reads the same."""
    reply = codec.decode(
        codec.encode(codec.error_event(request(), _invalid_context(), source=SOURCE))
    )

    assert reply_response(reply).body.decode() == HELLO_INVALID_BODY


def test_error_response_has_its_content_length() -> None:
    """Error bodies are framed with Content-Length."""
    response = error_response(RouteNotFoundError())

    assert header_map(response.headers)[b"content-length"] == [b"15"]


# --- Kubefox-* headers ----------------------------------------------------------------------


def test_kubefox_headers_name_adapter_event_and_the_known_context() -> None:
    """Adapter and event id always; platform, VE, deployment and manifest only when set."""
    context = EventContext(platform="demo", app_deployment="hello-world-main")

    headers = kubefox_headers("httpsrv-dev-abcde12345", "e-1", context)

    assert headers == [
        (b"kubefox-adapter", b"httpsrv-dev-abcde12345"),
        (b"kubefox-event-id", b"e-1"),
        (b"kubefox-platform", b"demo"),
        (b"kubefox-app-deployment", b"hello-world-main"),
    ]


def test_kubefox_headers_never_echo_a_value_that_would_break_the_header_block() -> None:
    """A client-sent context value with a newline is left out of the response headers."""
    context = EventContext(platform="demo", virtual_environment="qa\r\nX-Evil: 1")

    headers = kubefox_headers("a", "e", context)

    assert (b"kubefox-virtual-environment", b"qa\r\nX-Evil: 1") not in headers
    assert len(headers) == 3
