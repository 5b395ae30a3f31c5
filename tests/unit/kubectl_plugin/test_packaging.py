"""The plugin ships as a console script and as a krew archive: standard library only, never inside the operator."""

from __future__ import annotations

import ast
import hashlib
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
PLUGIN = REPO / "operator" / "kubectl_lighthouse"
OPERATOR = REPO / "operator" / "lighthouse_operator"


def imported_modules(directory: Path) -> set[str]:
    names: set[str] = set()
    for path in directory.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_plugin_uses_only_the_standard_library() -> None:
    foreign = imported_modules(PLUGIN) - set(sys.stdlib_module_names) - {"kubectl_lighthouse"}
    assert foreign == set()


def test_the_operator_never_imports_the_plugin() -> None:
    assert "kubectl_lighthouse" not in imported_modules(OPERATOR)


def test_console_script_and_images_leave_it_out() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-lighthouse"] == "kubectl_lighthouse.cli:main"
    for dockerfile in ("Dockerfile.operator", "Dockerfile.bridge"):
        text = (REPO / dockerfile).read_text()
        assert '"${site}/kubectl_lighthouse"' in text and "/opt/lighthouse/bin/kubectl-lighthouse" in text, dockerfile


def test_krew_archive_and_manifest(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    subprocess.run(
        [str(REPO / "hack" / "kubectl-plugin.sh"), "--out", str(out), "--base-url", "https://x.test/r"],
        check=True,
        capture_output=True,
    )
    manifest = yaml.safe_load((out / "lighthouse.yaml").read_text())
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2" and manifest["kind"] == "Plugin"
    assert manifest["metadata"]["name"] == "lighthouse"  # krew installs it as kubectl-lighthouse
    spec = manifest["spec"]
    assert spec["version"] == "v0.1.0" and spec["shortDescription"] and spec["homepage"].startswith("https://")
    (platform,) = spec["platforms"]
    archive = out / "kubectl-lighthouse-0.1.0.tar.gz"
    assert platform["uri"] == "https://x.test/r/kubectl-lighthouse-0.1.0.tar.gz"
    assert platform["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert platform["bin"] == "kubectl-lighthouse"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert {f["from"] for f in platform["files"]} <= set(names)
        assert tar.getmember("kubectl-lighthouse").mode & 0o111
    # Rebuilding gives the same bytes (the sha256 in a published manifest stays right).
    again = tmp_path / "again"
    subprocess.run([str(REPO / "hack" / "kubectl-plugin.sh"), "--out", str(again)], check=True, capture_output=True)
    assert (again / archive.name).read_bytes() == archive.read_bytes()
    # The single file runs without site-packages (-S -I: standard library only).
    proc = subprocess.run(
        [sys.executable, "-S", "-I", str(out / "kubectl-lighthouse"), "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "kubectl lighthouse" in proc.stdout, proc.stderr
