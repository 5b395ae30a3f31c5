"""Does an observed child already say what we would apply? Pure functions, so an idle operator writes nothing.

`covers(observed, desired)`: every field we set has the same value on the server. The server adds defaults (a
superset is fine) and canonicalises quantities ("1000m" -> "1"), which are compared by value.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

_SUFFIX = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def parse_quantity(value: int | str) -> Decimal:
    """A Kubernetes quantity as a number; ValueError when it is not one."""
    if isinstance(value, int):
        return Decimal(value)
    s = value.strip()
    for suffix in sorted(_SUFFIX, key=len, reverse=True):
        if suffix and s.endswith(suffix):
            number, mult = s[: -len(suffix)], _SUFFIX[suffix]
            break
    else:
        number, mult = s, Decimal(1)
    try:
        return Decimal(number) * mult
    except InvalidOperation:
        raise ValueError(f"not a quantity: {value!r}") from None


def _scalar_equal(observed: Any, desired: Any, in_resources: bool) -> bool:
    if observed == desired:
        return True
    if in_resources and isinstance(observed, int | str) and isinstance(desired, int | str):
        try:
            return parse_quantity(observed) == parse_quantity(desired)
        except ValueError:
            return False
    # The server keeps int-or-string values as given, but tolerate 8765 vs "8765".
    if isinstance(observed, int | str) and isinstance(desired, int | str) and not isinstance(desired, bool):
        return str(observed) == str(desired)
    return False


def covers(observed: Any, desired: Any, *, _in_resources: bool = False) -> bool:
    if isinstance(desired, dict):
        if not isinstance(observed, dict):
            return False
        for k, v in desired.items():
            if v is None:
                continue
            if k not in observed:
                # The server drops zero values of omitempty fields: an empty map or list (labels: {}), an empty
                # string (env value: ""), false, 0. Asking for one of those is satisfied by its absence.
                if v in ({}, [], "") or (v is False or (v == 0 and not isinstance(v, bool))):
                    continue
                return False
            if not covers(observed[k], v, _in_resources=_in_resources or k in ("resources", "requests", "limits")):
                return False
        return True
    if isinstance(desired, list):
        if not isinstance(observed, list) or len(observed) != len(desired):
            return False
        return all(covers(o, d, _in_resources=_in_resources) for o, d in zip(observed, desired, strict=True))
    return _scalar_equal(observed, desired, _in_resources)


# Fields the API server refuses to change after creation. Applying a change there fails the whole object, so keep
# what exists and say so instead (e.g. a bigger storage size needs a PVC resize, not a new StatefulSet).
IMMUTABLE: dict[str, list[str]] = {
    "StatefulSet": ["volumeClaimTemplates", "serviceName", "selector", "podManagementPolicy"],
    "Deployment": ["selector"],
    "PodDisruptionBudget": [],
}


def _vct_clean(vct: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for t in vct:
        md = {k: v for k, v in (t.get("metadata") or {}).items() if k in ("name", "labels", "annotations")}
        out.append({"metadata": md, "spec": t.get("spec", {})})
    return out


def _sized(desired: list[dict[str, Any]], observed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The desired claim templates with the observed storage requests (to tell a size change from any other)."""
    sizes = {
        (t.get("metadata") or {}).get("name"): ((t.get("spec") or {}).get("resources") or {}).get("requests", {})
        for t in observed
    }
    out = []
    for t in desired:
        name = (t.get("metadata") or {}).get("name")
        spec = dict(t.get("spec") or {})
        if name in sizes and "storage" in (sizes[name] or {}):
            resources = dict(spec.get("resources") or {})
            resources["requests"] = {**(resources.get("requests") or {}), "storage": sizes[name]["storage"]}
            spec["resources"] = resources
        out.append({**t, "spec": spec})
    return out


def keep_immutable(desired: dict[str, Any], observed: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """(manifest to apply, warnings): immutable fields that differ are taken from the observed object. A storage
    size alone that differs in a StatefulSet's claim templates is kept without a warning: the claims themselves
    grow (storage.py reports what happens)."""
    if observed is None:
        return desired, []
    fields = IMMUTABLE.get(desired["kind"], [])
    spec, ospec = dict(desired.get("spec", {})), observed.get("spec", {})
    warnings, kept = [], False
    for f in fields:
        if f not in spec or f not in ospec or covers(ospec[f], spec[f]):
            continue
        kept = True
        if f == "volumeClaimTemplates":
            if not covers(ospec[f], _sized(spec[f], ospec[f])):
                warnings.append(
                    f"{desired['kind']} {desired['metadata']['name']}: spec.{f} cannot change after creation "
                    "(only the storage size can grow); kept as it is"
                )
            spec[f] = _vct_clean(ospec[f])
            continue
        warnings.append(
            f"{desired['kind']} {desired['metadata']['name']}: spec.{f} cannot change after creation; "
            "kept as it is (recreate by hand)"
        )
        spec[f] = ospec[f]
    if not kept:
        return desired, []
    return {**desired, "spec": spec}, warnings
