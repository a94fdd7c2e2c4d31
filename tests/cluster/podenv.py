"""A container's environment and command line, resolved the way the kubelet resolves them."""

from __future__ import annotations

import base64
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubetune import conventions

from .selectors import field_value


class ConfigError(Exception):
    """The container cannot start yet: CreateContainerConfigError (e.g. a missing Secret)."""


class Unresolved(Exception):
    """An env value names a pod of a headless Service that has no address yet: a real
    process would retry the DNS lookup; the stand-in starts the container once it resolves."""


# (plural, name) -> the object in the pod's namespace, or None.
Lookup = Callable[[str, str], dict[str, Any] | None]
# An env value -> the same, or the address a cluster DNS name in it stands for.
Resolve = Callable[[str], str]

_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$\(")


def expand(text: str, env: dict[str, str]) -> str:
    """`$(VAR)` references to earlier variables; `$$(` escapes; unknown ones stay as written."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$(":
            return "$("
        return env.get(m.group(1), m.group(0))

    return _REF.sub(sub, text)


def _field_ref(pod: dict[str, Any], path: str) -> str:
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        return str((pod["metadata"].get(m.group(1)) or {}).get(m.group(2), ""))
    if path == "status.podIPs":
        return ",".join(ip["ip"] for ip in (pod.get("status") or {}).get("podIPs") or [])
    return field_value(pod, path) or ""


def _key_ref(lookup: Lookup, plural: str, ref: dict[str, Any]) -> str | None:
    obj = lookup(plural, ref.get("name", ""))
    kind = "secret" if plural == "secrets" else "configmap"
    if obj is None:
        if ref.get("optional"):
            return None
        raise ConfigError(f'{kind} "{ref.get("name")}" not found')
    key = ref.get("key", "")
    if plural == "secrets":
        if key in (obj.get("stringData") or {}):
            return str(obj["stringData"][key])
        if key in (obj.get("data") or {}):
            return base64.b64decode(obj["data"][key]).decode()
    elif key in (obj.get("data") or {}):
        return str(obj["data"][key])
    if ref.get("optional"):
        return None
    raise ConfigError(
        f"couldn't find key {key} in {kind.capitalize()} "
        f"{obj['metadata'].get('namespace')}/{ref.get('name')}"
    )


def container_env(pod: dict[str, Any], container: dict[str, Any], lookup: Lookup) -> dict[str, str]:
    """envFrom, then env (later entries win), with fieldRef, secretKeyRef, configMapKeyRef."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for plural, field in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            ref = source.get(field)
            if ref is None:
                continue
            obj = lookup(plural, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{field[:-3].lower()} "{ref.get("name")}" not found')
            data = dict(obj.get("data") or {})
            if plural == "secrets":
                data = {k: base64.b64decode(v).decode() for k, v in data.items()}
                data.update(obj.get("stringData") or {})
            env.update({prefix + k: str(v) for k, v in data.items()})
    for var in container.get("env") or []:
        name = var["name"]
        if "value" in var:
            env[name] = expand(str(var["value"]), env)
            continue
        source = var.get("valueFrom") or {}
        value: str | None = ""
        if "fieldRef" in source:
            value = _field_ref(pod, source["fieldRef"]["fieldPath"])
        elif "secretKeyRef" in source:
            value = _key_ref(lookup, "secrets", source["secretKeyRef"])
        elif "configMapKeyRef" in source:
            value = _key_ref(lookup, "configmaps", source["configMapKeyRef"])
        elif "resourceFieldRef" in source:
            resource = source["resourceFieldRef"].get("resource", "")
            kind, _, res = resource.partition(".")
            value = str(((container.get("resources") or {}).get(kind) or {}).get(res, "0"))
        if value is not None:
            env[name] = value
    return env


def command_line(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    """command + args with `$(VAR)` expanded; `python`/`python3` become this interpreter.

    A container without a command runs an idle placeholder (the image's entrypoint is unknown).
    """
    command = [expand(str(c), env) for c in container.get("command") or []]
    args = [expand(str(a), env) for a in container.get("args") or []]
    if not command:
        if args:
            raise ConfigError("the test cluster cannot run an image's entrypoint: set command")
        sleep = shutil.which("sleep") or "/bin/sleep"
        return [sleep, "infinity"]
    if command[0] in ("python", "python3"):
        command[0] = sys.executable
    return command + args


def remap_paths(value: str, mounts: dict[str, str]) -> str:
    """A path inside a volume mount, moved to the local folder standing in for the volume."""
    for mount in sorted(mounts, key=len, reverse=True):
        if value == mount or value.startswith(mount + "/"):
            return mounts[mount] + value[len(mount) :]
    return value


def process_launch(
    pod: dict[str, Any],
    spec: dict[str, Any],
    workdir: Path,
    message_file: Path,
    base_env: dict[str, str],
    lookup: Lookup,
    resolve: Resolve | None = None,
) -> tuple[list[str], dict[str, str]]:
    """argv and environment of a container's process.

    The process cannot write /dev/termination-log: env values naming the container's
    terminationMessagePath point at `message_file` instead, and KUBETUNE_TERMINATION_LOG is
    set to it unless declared. Volumes are folders of `workdir`; env values and args under a
    mountPath are rewritten to them (a local process cannot see /workspace). An env value
    that is a pod's DNS name under a headless Service becomes that pod's address (`resolve`:
    the processes share one resolver that knows no cluster names).
    """
    declared = container_env(pod, spec, lookup)
    if resolve is not None:
        declared = {k: resolve(v) for k, v in declared.items()}
    path = spec.get("terminationMessagePath", conventions.DEFAULT_TERMINATION_LOG)
    declared = {k: str(message_file) if v == path else v for k, v in declared.items()}
    declared.setdefault(conventions.ENV_TERMINATION_LOG, str(message_file))
    mounts = {}
    for mount in spec.get("volumeMounts") or []:
        target = workdir / "volumes" / mount["name"] / mount.get("subPath", "")
        target.mkdir(parents=True, exist_ok=True)
        mounts[mount["mountPath"].rstrip("/")] = str(target).rstrip("/")
    env = {**base_env, **{k: remap_paths(v, mounts) for k, v in declared.items()}}
    argv = command_line(spec, env)
    return argv[:1] + [remap_paths(a, mounts) for a in argv[1:]], env
