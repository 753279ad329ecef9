"""Checking an AppDeployment against a data set: the problems that stop it serving.

The same check runs in three places, as upstream: the operator (without data,
so only dependencies are checked), the release state machine and the broker
(per request context, with the merged data), and ``fox release`` before it
asks for confirmation. Messages, types and paths are upstream's verbatim.

What is checked, component by component (in name order):

1. each ``envVarSchema`` entry: present if required, of the declared type;
2. each route: every var its template uses (and every var its own
   ``envVarSchema`` lists) is required, and of the declared type if any;
3. each dependency: a ``KubeFox`` dependency names a component of the same
   AppDeployment, an ``HTTPAdapter`` dependency names an existing adapter
   whose URL and header templates are then checked against the data; any
   other type is invalid.

A var set to ``null`` counts as missing: it cannot satisfy a requirement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from kubefox.core.errors import InvalidError, RouteInvalidError
from kubefox.core.routes import template_vars
from kubefox.core.values import EnvVarType, env_var_type
from kubefox.resources.adapters import HTTPAdapter
from kubefox.resources.data import Data
from kubefox.resources.deployments import AppDeployment, ComponentDefinition, ComponentType
from kubefox.resources.manifests import ManifestHTTPAdapter
from kubefox.resources.problems import Problem, ProblemSource, ProblemSourceKind, ProblemType

_ADAPTER_REF = re.compile(r"\.(Vars|Env|Secrets)\.([A-Za-z_][A-Za-z0-9_]*)")

AnyHTTPAdapter = HTTPAdapter | ManifestHTTPAdapter


def adapter_template_refs(text: str) -> list[tuple[str, str]]:
    """``(section, name)`` of every ``{{.Vars.x}}``/``{{.Env.x}}``/``{{.Secrets.x}}`` in ``text``.

    ``Env`` is reported as ``Vars``: the two are synonyms.

    Raises:
        InvalidError: a ``{{`` is never closed, or a template is not one of the three forms.
    """
    refs: list[tuple[str, str]] = []
    start = text.find("{{")
    while start >= 0:
        end = text.find("}}", start + 2)
        if end < 0:
            raise InvalidError(f'"{{{{" at column {start + 1} is never closed')
        inner = text[start + 2 : end].strip()
        match = _ADAPTER_REF.fullmatch(inner)
        if match is None:
            raise InvalidError(
                f'"{{{{{inner}}}}}" is not {{{{.Vars.NAME}}}}, {{{{.Env.NAME}}}} '
                "or {{.Secrets.NAME}}"
            )
        section = "Secrets" if match[1] == "Secrets" else "Vars"
        refs.append((section, match[2]))
        start = text.find("{{", end + 2)
    return list(dict.fromkeys(refs))


class _Checker:
    """Collects the problems of one AppDeployment; one instance per call."""

    def __init__(
        self, appdep: AppDeployment, data: Data | None, adapters: Mapping[str, AnyHTTPAdapter]
    ) -> None:
        self.appdep = appdep
        self.data = data
        self.adapters = adapters
        self.problems: list[Problem] = []

    def cause(self, path: str, value: str | None = None) -> ProblemSource:
        return ProblemSource(
            kind=ProblemSourceKind.APP_DEPLOYMENT,
            name=self.appdep.metadata.name,
            observed_generation=self.appdep.metadata.generation or 0,
            path=path,
            value=value,
        )

    def add(self, kind: ProblemType, message: str, *causes: ProblemSource) -> None:
        self.problems.append(Problem(type=kind, message=message, causes=list(causes)))

    def run(self) -> list[Problem]:
        used_adapters: dict[str, AnyHTTPAdapter] = {}
        for name in sorted(self.appdep.spec.components):
            component = self.appdep.spec.components[name]
            prefix = f"$.spec.components.{name}"
            if self.data is not None:
                self.check_env_schema(component, prefix, self.data)
                self.check_routes(component, prefix, self.data)
            for adapter_name in self.check_dependencies(name, component, prefix):
                used_adapters.setdefault(adapter_name, self.adapters[adapter_name])
        if self.data is not None:
            for adapter_name, adapter in used_adapters.items():
                self.check_adapter(adapter_name, adapter, self.data)
        return self.problems

    def check_var(
        self, name: str, wanted: EnvVarType | None, path: str, data: Data, *, required: bool
    ) -> None:
        value = data.vars.get(name)
        if value is None:
            if required:
                self.add(
                    ProblemType.VAR_NOT_FOUND,
                    f'Var "{name}" not found but is required.',
                    self.cause(path),
                )
            return
        actual = env_var_type(value)
        if wanted is not None and actual != wanted:
            self.add(
                ProblemType.VAR_WRONG_TYPE,
                f'Var "{name}" has wrong type; wanted "{wanted}" got "{actual}".',
                self.cause(f"{path}.type", str(wanted)),
            )

    def check_env_schema(self, component: ComponentDefinition, prefix: str, data: Data) -> None:
        for name in sorted(component.env_var_schema):
            definition = component.env_var_schema[name]
            path = f"{prefix}.envVarSchema.{name}"
            self.check_var(name, definition.type, path, data, required=definition.required)

    def check_routes(self, component: ComponentDefinition, prefix: str, data: Data) -> None:
        for index, route in enumerate(component.routes):
            path = f"{prefix}.routes[{index}]"
            try:
                names = template_vars(route.rule)
            except RouteInvalidError as exc:
                self.add(
                    ProblemType.PARSE_ERROR,
                    f"Route {route.id} could not be parsed: {exc.cause}.",
                    self.cause(f"{path}.rule", route.rule),
                )
                names = []
            names += [name for name in route.env_var_schema if name not in names]
            for name in names:
                definition = route.env_var_schema.get(name)
                wanted = definition.type if definition is not None else None
                self.check_var(name, wanted, f"{path}.{name}", data, required=True)

    def check_dependencies(
        self, name: str, component: ComponentDefinition, prefix: str
    ) -> list[str]:
        """Check ``component``'s dependencies; return the adapters it uses that exist."""
        found_adapters: list[str] = []
        for dep_name in sorted(component.dependencies):
            dep_type = component.dependencies[dep_name].type
            path = f"{prefix}.dependencies.{dep_name}"
            if dep_type is ComponentType.KUBEFOX:
                found = dep_name in self.appdep.spec.components
            elif dep_type is ComponentType.HTTP_ADAPTER:
                found = dep_name in self.adapters
                if found:
                    found_adapters.append(dep_name)
            else:
                self.add(
                    ProblemType.DEPENDENCY_INVALID,
                    f'Component "{name}" dependency "{dep_name}" has unsupported type '
                    f'"{dep_type}".',
                    self.cause(f"{path}.type", str(dep_type)),
                )
                continue
            if not found:
                self.add(
                    ProblemType.DEPENDENCY_NOT_FOUND,
                    f'Component "{name}" dependency "{dep_name}" of type "{dep_type}" not found.',
                    self.cause(path),
                )
        return found_adapters

    def check_adapter(self, name: str, adapter: AnyHTTPAdapter, data: Data) -> None:
        templates = {"$.spec.url": adapter.spec.url}
        for header in sorted(adapter.spec.headers):
            templates[f"$.spec.headers.{header}"] = adapter.spec.headers[header]
        for path, text in templates.items():
            cause = ProblemSource(
                kind=ProblemSourceKind.HTTP_ADAPTER,
                name=name,
                observed_generation=adapter.metadata.generation or 0,
                path=path,
                value=text,
            )
            try:
                refs = adapter_template_refs(text)
            except InvalidError as exc:
                self.add(
                    ProblemType.PARSE_ERROR,
                    f'HTTPAdapter "{name}" template could not be parsed: {exc.cause}.',
                    cause,
                )
                continue
            for section, ref in refs:
                values = data.secrets if section == "Secrets" else data.vars
                if values.get(ref) is None:
                    word = "Secret" if section == "Secrets" else "Var"
                    self.add(
                        ProblemType.VAR_NOT_FOUND,
                        f'{word} "{ref}" not found but is required.',
                        cause.model_copy(update={"value": None}),
                    )


def validate_app_deployment(
    appdep: AppDeployment,
    data: Data | None,
    *,
    adapters: Mapping[str, AnyHTTPAdapter] | None = None,
) -> list[Problem]:
    """Every problem that stops ``appdep`` from serving with ``data`` and ``adapters``.

    Args:
        appdep: the AppDeployment to check.
        data: the context's merged data (see :func:`merge_data`); ``None`` checks
            dependencies only, which is what the operator does for AppDeployment
            status.
        adapters: the HTTPAdapters that exist in the context, by name (from the
            release manifest if there is one, else the live ones); ``None`` means
            none exist, so every adapter dependency is reported missing.

    Returns:
        The problems, in a stable order (component name, then schema, routes,
        dependencies, then adapter templates); empty if the deployment can serve.
    """
    return _Checker(appdep, data, adapters or {}).run()
