"""A way in from outside the cluster (spec.expose): an Ingress, or a Gateway API HTTPRoute attached to an existing
Gateway (with the ReferenceGrant its TLS Secret may need). All three route to the bridge's API Service.

The Gateway API kinds exist only where its CRDs are installed: the reconciler applies them as optional children, so
a missing CRD is a warning in status (Degraded, SpecNotFullyApplied), not a failure of everything else.
"""

from __future__ import annotations

from .. import naming
from ..models import LighthouseBridge
from .common import Manifest, meta

GATEWAY_GROUP = "gateway.networking.k8s.io"
HTTPROUTE_API = f"{GATEWAY_GROUP}/v1"
REFERENCEGRANT_API = f"{GATEWAY_GROUP}/v1beta1"


def ingress_name(lhb: LighthouseBridge) -> str:
    return naming.Names(lhb.name).bridge


def reference_grant_name(lhb: LighthouseBridge) -> str:
    return f"{naming.Names(lhb.name).bridge}-tls"


def ingress(lhb: LighthouseBridge) -> Manifest | None:
    spec = lhb.spec.expose.ingress
    if spec is None:
        return None
    backend = {"service": {"name": naming.Names(lhb.name).bridge, "port": {"name": "http"}}}
    body: Manifest = {
        "rules": [
            {"host": spec.host, "http": {"paths": [{"path": spec.path, "pathType": "Prefix", "backend": backend}]}}
        ]
    }
    if spec.class_name:
        body["ingressClassName"] = spec.class_name
    if spec.tls:
        body["tls"] = [{"hosts": [spec.host], "secretName": spec.tls.secret_name}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta(lhb, ingress_name(lhb), naming.BRIDGE, spec.annotations),
        "spec": body,
    }


def http_route(lhb: LighthouseBridge) -> Manifest | None:
    spec = lhb.spec.expose.gateway
    if spec is None:
        return None
    parents = []
    for p in spec.parent_refs:
        ref: Manifest = {"group": GATEWAY_GROUP, "kind": "Gateway", "name": p.name}
        if p.namespace:
            ref["namespace"] = p.namespace
        if p.section_name:
            ref["sectionName"] = p.section_name
        parents.append(ref)
    body: Manifest = {
        "parentRefs": parents,
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": spec.path}}],
                "backendRefs": [{"name": naming.Names(lhb.name).bridge, "port": naming.API_PORT}],
            }
        ],
    }
    if spec.hostnames:
        body["hostnames"] = list(spec.hostnames)
    return {
        "apiVersion": HTTPROUTE_API,
        "kind": "HTTPRoute",
        "metadata": meta(lhb, ingress_name(lhb), naming.BRIDGE),
        "spec": body,
    }


def reference_grant(lhb: LighthouseBridge) -> Manifest | None:
    """Lets the parent Gateways in other namespaces use the TLS Secret of this one (a listener's certificateRefs
    across namespaces need it). None when no TLS Secret is named or every Gateway is in this namespace."""
    spec = lhb.spec.expose.gateway
    if spec is None or spec.tls is None:
        return None
    others = sorted({p.namespace for p in spec.parent_refs if p.namespace and p.namespace != lhb.namespace})
    if not others:
        return None
    return {
        "apiVersion": REFERENCEGRANT_API,
        "kind": "ReferenceGrant",
        "metadata": meta(lhb, reference_grant_name(lhb), naming.BRIDGE),
        "spec": {
            "from": [{"group": GATEWAY_GROUP, "kind": "Gateway", "namespace": ns} for ns in others],
            "to": [{"group": "", "kind": "Secret", "name": spec.tls.secret_name}],
        },
    }


def url(lhb: LighthouseBridge) -> str | None:
    """The external URL of the API, when spec.expose gives it a host."""
    if (i := lhb.spec.expose.ingress) is not None:
        return f"{'https' if i.tls else 'http'}://{i.host}{i.path.rstrip('/')}"
    if (g := lhb.spec.expose.gateway) is not None and g.hostnames and not g.hostnames[0].startswith("*"):
        return f"{'https' if g.tls else 'http'}://{g.hostnames[0]}{g.path.rstrip('/')}"
    return None
