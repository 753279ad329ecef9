"""The OpenAPI 3.1 document of the API, served at ``/openapi.json``.

Written by hand for the endpoints, because each one's parameters, statuses
and media types are decisions worth reading in one place; the resource
schemas come from the pydantic models, so a field added to a kind is
documented without an edit here. A test checks that every route of the
application is described, and a schemathesis run against this document finds
no server error.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from kubefox import __version__
from kubefox.api.recordings import recording_paths, recording_schemas
from kubefox.api.telemetry import telemetry_paths, telemetry_schemas
from kubefox.resources import RESOURCE_KINDS, SHORT_NAMES, ReleaseStatus

_REF = "#/components/schemas/{model}"
_PROBLEM = "application/problem+json"
_YAML = "application/yaml"

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": _REF.format(model=name)}


def _kind_names() -> list[str]:
    names: list[str] = []
    for kind in sorted(RESOURCE_KINDS):
        names += [kind, kind.lower(), f"{kind.lower()}s", *SHORT_NAMES[kind]]
    return names


_DNS_LABEL: Schema = {
    "type": "string",
    "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
    "maxLength": 63,
}

_PARAMETERS: dict[str, Schema] = {
    "kind": {
        "name": "kind",
        "in": "path",
        "required": True,
        "description": "A kind as users type it: the kind, its plural or a short name "
        "(ve, appdep, env, rm, ...), in any case.",
        "schema": {"type": "string", "enum": _kind_names()},
    },
    "name": {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "The resource's name (a DNS label).",
        "schema": _DNS_LABEL,
    },
    "labelSelector": {
        "name": "labelSelector",
        "in": "query",
        "required": False,
        "description": "Equality terms key=value joined by commas; every term must hold.",
        "schema": {"type": "string"},
        "example": "app.kubernetes.io/name=hello-world",
    },
    "timeoutSeconds": {
        "name": "timeoutSeconds",
        "in": "query",
        "required": False,
        "description": "How long to wait, in seconds (bounded by the server's maximum).",
        "schema": {"type": "integer", "minimum": 1},
    },
    "artifact": {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "<app>.<component>.<hash>, the hash of the files the artifact holds.",
        "schema": {"type": "string"},
        "example": "hello-world.backend.0123456789abcdef0123456789abcdef",
    },
}


def _problem(description: str) -> Schema:
    return {"description": description, "content": {_PROBLEM: {"schema": _ref("Problem")}}}


def _json(description: str, schema: Schema, **extra: Any) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


_BAD = _problem("The request is invalid; `errors` gives the JSON path of each cause.")
_MISSING = _problem("No such resource.")
_CONFLICT = _problem("The write conflicts with the stored state (exists, protected, raced).")
_TOO_LARGE = _problem("The body is larger than the server accepts.")
_UNAVAILABLE = _problem("The store or a part of the platform cannot be reached.")
_TIMEOUT = _problem("The wait ended before the condition held.")
_UNSUPPORTED = _problem("The method is not allowed on this path.")

_RESOURCE_BODY: Schema = {
    "required": True,
    "description": "The resource, as JSON or as YAML; apiVersion, kind and metadata.name may "
    "be left out (the URL gives them). A status is ignored.",
    "content": {
        "application/json": {"schema": _ref("Resource")},
        _YAML: {"schema": _ref("Resource")},
    },
}


def _paths() -> dict[str, Any]:
    p = _PARAMETERS
    resource = _json("The resource.", _ref("Resource"))
    return {
        "/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "responses": {"200": _json("The OpenAPI document.", {"type": "object"})},
            }
        },
        "/api/v1/healthz": {
            "get": {
                "operationId": "getHealth",
                "summary": "The API answers and reaches the resource store",
                "responses": {
                    "200": _json("Healthy.", _ref("Health")),
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/api/v1/status": {
            "get": {
                "operationId": "getStatus",
                "summary": "What runs: platform parts and component instances with their health",
                "responses": {"200": _json("The status report.", _ref("StatusReport"))},
            }
        },
        "/api/v1/kinds": {
            "get": {
                "operationId": "listKinds",
                "summary": "Every resource kind and the names it answers to",
                "responses": {"200": _json("The kinds.", _ref("KindList"))},
            }
        },
        "/api/v1/watch": {
            "get": {
                "operationId": "watch",
                "summary": "Stream every change after a revision",
                "description": "Newline-delimited JSON, or server-sent events when the client "
                "accepts text/event-stream (the event id is the revision; Last-Event-ID "
                "resumes). From revision 0 the current state comes first.",
                "parameters": [
                    {
                        "name": "kind",
                        "in": "query",
                        "required": False,
                        "description": "Only these kinds (repeat, or join with commas).",
                        "schema": {"type": "array", "items": {"type": "string"}},
                        "style": "form",
                        "explode": True,
                    },
                    {
                        "name": "fromRevision",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0},
                    },
                    {
                        **p["timeoutSeconds"],
                        "description": "End the stream after this many seconds.",
                    },
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The stream of changes.",
                        "content": {
                            "application/x-ndjson": {"schema": _ref("WatchEvent")},
                            "text/event-stream": {"schema": {"type": "string"}},
                        },
                    },
                    "400": _BAD,
                },
            }
        },
        "/api/v1/resources/{kind}": {
            "parameters": [p["kind"]],
            "get": {
                "operationId": "listResources",
                "summary": "List the resources of a kind",
                "parameters": [p["labelSelector"]],
                "responses": {
                    "200": _json("The resources, sorted by name.", _ref("ResourceList")),
                    "400": _BAD,
                },
            },
            "post": {
                "operationId": "createResource",
                "summary": "Create a resource (409 if one of that name exists)",
                "requestBody": _RESOURCE_BODY,
                "responses": {
                    "201": _json("Created.", _ref("Resource")),
                    "400": _BAD,
                    "409": _CONFLICT,
                    "413": _TOO_LARGE,
                },
            },
        },
        "/api/v1/resources/{kind}/{name}": {
            "parameters": [p["kind"], p["name"]],
            "get": {
                "operationId": "getResource",
                "summary": "Read a resource",
                "responses": {"200": resource, "400": _BAD, "404": _MISSING},
            },
            "put": {
                "operationId": "applyResource",
                "summary": "Apply a resource: create it, or replace what users write of it",
                "description": "The status is kept. A document that changes nothing is not "
                "written. Versioned AppDeployments, ReleaseManifests and a "
                "VirtualEnvironment's environment are immutable.",
                "requestBody": _RESOURCE_BODY,
                "responses": {
                    "200": _json(
                        "Updated, or unchanged.", _ref("Resource"), headers=_apply_header()
                    ),
                    "201": _json("Created.", _ref("Resource"), headers=_apply_header()),
                    "400": _BAD,
                    "409": _CONFLICT,
                    "413": _TOO_LARGE,
                },
            },
            "delete": {
                "operationId": "deleteResource",
                "summary": "Delete a resource (409 while a release uses it)",
                "responses": {
                    "200": _json("Deleted; the resource as it was.", _ref("Resource")),
                    "400": _BAD,
                    "404": _MISSING,
                    "409": _CONFLICT,
                },
            },
        },
        "/api/v1/appdeployments/{name}/wait": {
            "parameters": [p["name"]],
            "post": {
                "operationId": "waitAppDeployment",
                "summary": "Wait until an AppDeployment is available at its generation",
                "parameters": [p["timeoutSeconds"]],
                "responses": {
                    "200": _json("Available.", _ref("AppDeployment")),
                    "400": _BAD,
                    "404": _MISSING,
                    "503": _problem("The deployment failed; `errors` lists its problems."),
                    "504": _TIMEOUT,
                },
            },
        },
        "/api/v1/artifacts/{name}": {
            "parameters": [p["artifact"]],
            "get": {
                "operationId": "getArtifact",
                "summary": "Download a component artifact",
                "responses": {
                    "200": {
                        "description": "The artifact (a tar.gz).",
                        "content": {
                            "application/gzip": {
                                "schema": {"type": "string", "contentMediaType": "application/gzip"}
                            }
                        },
                    },
                    "400": _BAD,
                    "404": _MISSING,
                },
            },
            "head": {
                "operationId": "artifactExists",
                "summary": "Whether a component artifact is stored",
                "responses": {
                    "200": {"description": "Stored."},
                    "400": {"description": "The name is not <app>.<component>.<hash>."},
                    "404": {"description": "Not stored."},
                },
            },
            "put": {
                "operationId": "putArtifact",
                "summary": "Upload a component artifact; its files must hash to the name's hash",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/octet-stream": {
                            "schema": {
                                "type": "string",
                                "contentMediaType": "application/octet-stream",
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json("Already stored (identical).", _ref("ArtifactStored")),
                    "201": _json("Stored.", _ref("ArtifactStored")),
                    "400": _BAD,
                    "413": _TOO_LARGE,
                },
            },
        },
        "/api/v1/virtualenvironments/{name}/release": {
            "parameters": [p["name"]],
            "post": {
                "operationId": "release",
                "summary": "Release an AppDeployment (by version, tag, branch, commit or name)",
                "parameters": [{**p["timeoutSeconds"], "description": "Wait until it is active."}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ReleaseRequest")}},
                },
                "responses": {
                    "200": _json("The VirtualEnvironment.", _ref("VirtualEnvironment")),
                    "400": _BAD,
                    "404": _MISSING,
                    "409": _CONFLICT,
                    "413": _TOO_LARGE,
                    "504": _TIMEOUT,
                },
            },
        },
        "/api/v1/virtualenvironments/{name}/history": {
            "parameters": [p["name"]],
            "get": {
                "operationId": "releaseHistory",
                "summary": "The releases of a VirtualEnvironment, newest first",
                "responses": {
                    "200": _json("The history.", _ref("ReleaseHistory")),
                    "400": _BAD,
                    "404": _MISSING,
                },
            },
        },
        "/api/v1/virtualenvironments/{name}/rollback": {
            "parameters": [p["name"]],
            "post": {
                "operationId": "rollback",
                "summary": "Release again what was active before the current release",
                "parameters": [{**p["timeoutSeconds"], "description": "Wait until it is active."}],
                "responses": {
                    "200": _json("The VirtualEnvironment.", _ref("VirtualEnvironment")),
                    "400": _BAD,
                    "404": _MISSING,
                    "409": _CONFLICT,
                    "504": _TIMEOUT,
                },
            },
        },
    }


def _apply_header() -> Schema:
    return {
        "kubefox-apply": {
            "description": "What the apply did.",
            "schema": {"type": "string", "enum": ["created", "configured", "unchanged"]},
        }
    }


def _own_schemas() -> dict[str, Schema]:
    string_or_null: Schema = {"type": ["string", "null"]}
    return {
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem document; `code` is kubefox's stable error code.",
            "required": ["type", "title", "status", "code", "detail"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "code": {"type": "integer"},
                "detail": {"type": "string"},
                "instance": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["path", "message"],
                        "properties": {
                            "path": {"type": "string", "description": "JSON path of the cause"},
                            "message": {"type": "string"},
                        },
                    },
                },
                "details": {"type": "object"},
            },
        },
        "Resource": {"anyOf": [_ref(kind) for kind in sorted(RESOURCE_KINDS)]},
        "ResourceList": {
            "type": "object",
            "required": ["apiVersion", "kind", "metadata", "items"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {
                    "type": "object",
                    "properties": {"resourceVersion": {"type": "string"}},
                },
                "items": {"type": "array", "items": _ref("Resource")},
            },
        },
        "WatchEvent": {
            "type": "object",
            "required": ["type", "revision", "kind", "name", "object"],
            "properties": {
                "type": {"type": "string", "enum": ["PUT", "DELETE"]},
                "revision": {"type": "integer"},
                "kind": {"type": "string"},
                "name": {"type": "string"},
                "object": {"anyOf": [_ref("Resource"), {"type": "null"}]},
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "platform", "revision"],
            "properties": {
                "status": {"type": "string"},
                "platform": {"type": "string"},
                "revision": {"type": "integer"},
            },
        },
        "KindList": {
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kinds": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "kind": {"type": "string"},
                            "plural": {"type": "string"},
                            "shortNames": {"type": "array", "items": {"type": "string"}},
                            "namespaced": {"type": "boolean"},
                        },
                    },
                },
            },
        },
        "StatusReport": {
            "type": "object",
            "required": ["platform", "namespace", "healthy", "parts", "components"],
            "properties": {
                "platform": {"type": "string"},
                "namespace": {"type": "string"},
                "healthy": {"type": "boolean"},
                "parts": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "url": string_or_null,
                            "healthy": {"type": "boolean"},
                        },
                    },
                },
                "components": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "app": {"type": "string"},
                            "component": {"type": "string"},
                            "hash": {"type": "string"},
                            "status": {"type": "string"},
                            "pid": {"type": ["integer", "null"]},
                            "restarts": {"type": "integer"},
                            "lastExitCode": {"type": ["integer", "null"]},
                            "since": string_or_null,
                            "healthy": {"type": "boolean"},
                            "appDeployments": {"type": "array", "items": {"type": "string"}},
                            "instances": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "id": {"type": "string"},
                                        "pid": {"type": ["integer", "null"]},
                                        "startedAt": string_or_null,
                                        "heartbeatAt": string_or_null,
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
        "ArtifactStored": {
            "type": "object",
            "required": ["name", "stored", "size"],
            "properties": {
                "name": {"type": "string"},
                "stored": {"type": "boolean", "description": "False if it was already there."},
                "size": {"type": "integer"},
            },
        },
        "ReleaseRequest": {
            "type": "object",
            "required": ["ref"],
            "additionalProperties": False,
            "properties": {
                "ref": {
                    "type": "string",
                    "minLength": 1,
                    "description": "AppDeployment name, commit, short commit, version, tag or "
                    "branch, tried in that order.",
                },
                "app": {
                    "type": "string",
                    "description": "The app, when the ref could name several.",
                },
            },
        },
        "ReleaseHistory": {
            "type": "object",
            "required": ["virtualEnvironment", "releases"],
            "properties": {
                "virtualEnvironment": {"type": "string"},
                "releases": {"type": "array", "items": _ref("ReleaseStatus")},
            },
        },
    }


@functools.cache
def _document() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (model, "validation") for model in (*RESOURCE_KINDS.values(), ReleaseStatus)
    ]
    _, definitions = models_json_schema(models, ref_template=_REF)
    schemas: dict[str, Schema] = dict(definitions.get("$defs", {}))
    schemas.update(_own_schemas())
    schemas.update(recording_schemas())
    schemas.update(telemetry_schemas())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "KubeFox control plane",
            "version": __version__,
            "description": "Resources (every kind, upstream's YAML), artifacts, releases, "
            "status, a watch stream, recordings, and the platform's telemetry (traces, logs "
            "and Prometheus metrics, served when telemetry is on). Every error is an "
            "application/problem+json document with a stable `code` and the JSON path of "
            "each cause.",
        },
        "paths": _paths() | recording_paths("/api/v1") | telemetry_paths("/api/v1"),
        "components": {"schemas": schemas},
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document (a fresh copy: callers may change it)."""
    return copy.deepcopy(_document())
