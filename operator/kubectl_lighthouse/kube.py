"""The plugin's only way to the cluster: the user's own `kubectl`, with the kubectl flags they gave us.

kubectl runs a plugin with the arguments that follow the plugin's name, so `kubectl lighthouse status demo -n team-a
--context prod` reaches us as `status demo -n team-a --context prod`: the connection flags below are taken out here
and passed on to every kubectl call, so the plugin honours the same kubeconfig, context and namespace as kubectl.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

# kubectl's connection flags that take a value (`--flag value` or `--flag=value`).
VALUE_FLAGS = (
    "--kubeconfig", "--context", "--cluster", "--user", "--server", "-s", "--token", "--as", "--as-group", "--as-uid",
    "--request-timeout", "--certificate-authority", "--client-certificate", "--client-key", "--tls-server-name",
)  # fmt: skip
BOOL_FLAGS = ("--insecure-skip-tls-verify",)


class KubectlError(RuntimeError):
    """kubectl failed; the message is its own error output."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str):
        self.returncode, self.stderr = returncode, stderr.strip()
        super().__init__(self.stderr or f"kubectl {' '.join(args)} exited with {returncode}")

    @property
    def not_found(self) -> bool:
        return "NotFound" in self.stderr or "not found" in self.stderr


def split_kubectl_flags(argv: Sequence[str]) -> tuple[list[str], list[str], str | None]:
    """(the plugin's own arguments, kubectl connection flags, namespace or None). Stops at `--`."""
    own: list[str] = []
    flags: list[str] = []
    namespace: str | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            own.extend(argv[i:])
            break
        name, eq, value = arg.partition("=")
        if name in ("-n", "--namespace"):
            if eq:
                namespace = value
            elif i + 1 < len(argv):
                namespace = argv[i + 1]
                i += 1
            else:
                own.append(arg)  # argparse reports the missing value
        elif arg.startswith("-n") and len(arg) > 2 and not arg.startswith("--"):
            namespace = arg[2:]
        elif name in VALUE_FLAGS:
            if eq:
                flags.append(arg)
            elif i + 1 < len(argv):
                flags += [arg, argv[i + 1]]
                i += 1
            else:
                own.append(arg)
        elif name in BOOL_FLAGS:
            flags.append(arg)
        else:
            own.append(arg)
        i += 1
    return own, flags, namespace


@dataclass
class Kubectl:
    """`kubectl` with fixed connection flags and a namespace."""

    flags: list[str] = field(default_factory=list)
    namespace: str | None = None
    binary: str = field(default_factory=lambda: os.environ.get("KUBECTL") or shutil.which("kubectl") or "kubectl")

    def __post_init__(self) -> None:
        if self.namespace is None:
            self.namespace = self._context_namespace()

    def _context_namespace(self) -> str:
        """The current context's namespace, as kubectl itself would use it (default: `default`)."""
        try:
            out = self.run("config", "view", "--minify", "-o", "jsonpath={..namespace}", namespaced=False)
        except (KubectlError, OSError):
            return "default"
        return out.strip() or "default"

    def command(self, *args: str, namespaced: bool = True) -> list[str]:
        cmd = [self.binary, *self.flags]
        if namespaced and self.namespace:
            cmd += ["--namespace", self.namespace]
        return [*cmd, *args]

    def run(self, *args: str, namespaced: bool = True, input: str | None = None, check: bool = True) -> str:
        cmd = self.command(*args, namespaced=namespaced)
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise KubectlError(args, proc.returncode, proc.stderr)
        return proc.stdout

    def json(self, *args: str, namespaced: bool = True) -> Any:
        return json.loads(self.run(*args, "-o", "json", namespaced=namespaced))

    def get(self, resource: str, name: str) -> Obj | None:
        try:
            return dict(self.json("get", resource, name))
        except KubectlError as e:
            if e.not_found:
                return None
            raise

    def items(self, resource: str, selector: str | None = None) -> list[Obj]:
        args = ["get", resource]
        if selector:
            args += ["-l", selector]
        try:
            return list(self.json(*args).get("items") or [])
        except KubectlError as e:
            if "the server doesn't have a resource type" in e.stderr:
                return []  # an optional API (ServiceMonitor) that this cluster does not serve
            raise

    def apply(self, obj: Obj, field_manager: str = "kubectl-lighthouse") -> Obj:
        out = self.run(
            "apply", "--server-side", f"--field-manager={field_manager}", "-o", "json", "-f", "-", input=json.dumps(obj)
        )
        return dict(json.loads(out))

    def patch(self, resource: str, name: str, patch: Obj, ptype: str = "merge") -> Obj:
        out = self.run("patch", resource, name, "--type", ptype, "-p", json.dumps(patch), "-o", "json")
        return dict(json.loads(out))
