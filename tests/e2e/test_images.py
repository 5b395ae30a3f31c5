"""The operator and bridge images: contents, users, labels, archives and versions."""

from __future__ import annotations

import json
import tarfile
import tomllib

import pytest

from tests.e2e.containers import REPO_ROOT, Images, inspect_image, run_once
from tests.harness.pyfuse3_build import pyfuse3_patched_version

VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]

# find_spec answers without importing, so a module that is present but fails to import still counts as present.
PROBE = (
    "import importlib.util, json, sys\n"
    "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}))"
)


def modules_present(image: str, *modules: str) -> dict[str, bool]:
    out = run_once(image, "-c", PROBE, *modules, flags=["--entrypoint", "python3"]).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_operator_image_reports_its_version(images: Images) -> None:
    out = run_once(images.operator, "--version")
    assert VERSION in out.stdout + out.stderr


def test_bridge_image_reports_its_version(images: Images) -> None:
    out = run_once(images.bridge, "version")
    assert VERSION in out.stdout + out.stderr


def test_operator_image_carries_only_what_the_operator_imports(images: Images) -> None:
    needed = ("kopf", "lighthouse_operator", "lighthouse_policy")
    foreign = ("kubernetes", "fastapi", "pyfuse3", "uvicorn", "asyncpg", "trio", "lighthouse_bridge",
               "kubectl_lighthouse", "pip")
    present = modules_present(images.operator, *needed, *foreign)
    assert [m for m in needed if not present[m]] == []
    assert [m for m in foreign if present[m]] == []


def test_every_operator_module_imports_inside_the_operator_image(images: Images) -> None:
    # Catches an operator module that imports something only the bridge extra installs.
    script = (
        "import importlib, pkgutil, lighthouse_operator as p\n"
        "names = [m.name for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]\n"
        "for n in names: importlib.import_module(n)\n"
        "print(len(names))"
    )
    out = run_once(images.operator, "-c", script, flags=["--entrypoint", "python3"])
    assert int(out.stdout.strip().splitlines()[-1]) >= 1


def test_every_bridge_module_imports_inside_the_bridge_image(images: Images) -> None:
    # Catches a bridge module that imports something only the dev extra installs.
    script = (
        "import importlib, pkgutil, lighthouse_bridge as p\n"
        "names = [m.name for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]\n"
        "for n in names: importlib.import_module(n)\n"
        "print(len(names))"
    )
    out = run_once(images.bridge, "-c", script, flags=["--entrypoint", "python3"])
    assert int(out.stdout.strip().splitlines()[-1]) >= 1


def test_bridge_image_has_the_fuse_runtime_and_no_operator(images: Images) -> None:
    needed = ("lighthouse_bridge", "lighthouse_policy", "fastapi", "uvicorn", "asyncpg", "redis", "pyfuse3", "trio")
    foreign = ("kopf", "kubernetes", "lighthouse_operator", "kubectl_lighthouse", "pip")
    present = modules_present(images.bridge, *needed, *foreign)
    assert [m for m in needed if not present[m]] == []
    assert [m for m in foreign if present[m]] == []
    # fusermount3 is setuid root: libfuse falls back to it when the process cannot mount by itself.
    mode = run_once(images.bridge, "-c", "stat -c %a /usr/bin/fusermount3", flags=["--entrypoint", "sh"]).stdout
    assert mode.strip() == "4755"
    # Our patched pyfuse3 (hack/build-pyfuse3.sh): its local version names the patch it was built with.
    script = "import pyfuse3; print(pyfuse3.__version__, pyfuse3.Operations.inode_as_fh)"
    out = run_once(images.bridge, "-c", script, flags=["--entrypoint", "python3"])
    assert out.stdout.split() == [pyfuse3_patched_version(), "False"]


@pytest.mark.parametrize("component", ["operator", "bridge"])
def test_images_run_as_a_non_root_user_by_default(images: Images, component: str) -> None:
    image = getattr(images, component)
    assert inspect_image(image)["Config"]["User"] == "65532:65532"
    out = run_once(image, "-c", "id -u; id -g", flags=["--entrypoint", "sh"])
    assert out.stdout.split() == ["65532", "65532"]


@pytest.mark.parametrize("component", ["operator", "bridge"])
def test_images_carry_oci_labels(images: Images, component: str) -> None:
    labels = inspect_image(getattr(images, component))["Config"]["Labels"]
    assert labels["org.opencontainers.image.title"] == f"lighthouse-{component}"
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert len(labels["org.opencontainers.image.revision"]) == 40 or labels["org.opencontainers.image.revision"] == (
        "unknown"
    )
    assert labels["org.opencontainers.image.created"].startswith("20")


def test_bridge_image_declares_its_port_and_entrypoint(images: Images) -> None:
    config = inspect_image(images.bridge)["Config"]
    assert "8765/tcp" in config["ExposedPorts"]
    assert config["Entrypoint"] == ["/usr/bin/tini", "--", "lighthouse-bridge"]
    assert config["Cmd"] == ["run"]


@pytest.mark.parametrize("component", ["operator", "bridge"])
def test_oci_archives_are_exported(images: Images, component: str) -> None:
    archive = getattr(images, f"{component}_archive")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        assert {"oci-layout", "index.json"} <= names
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
    ref_names = [m.get("annotations", {}).get("org.opencontainers.image.ref.name") for m in index["manifests"]]
    assert any(ref and ref.endswith(VERSION) for ref in ref_names), ref_names
