#!/usr/bin/env bash
# Builds the `kubectl lighthouse` plugin for krew: a single-file Python zipapp (the plugin is standard library only),
# a reproducible archive (the same sources give the same sha256) and the krew manifest for it.
#   hack/kubectl-plugin.sh [--base-url URL] [--out DIR]
# Writes DIR/kubectl-lighthouse, DIR/kubectl-lighthouse-VERSION.tar.gz and DIR/lighthouse.yaml (default DIR: dist).
# BASE_URL is where the archive will be published (default https://lighthouse.dev/releases/vVERSION).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

OUT=dist
BASE_URL=
while [ $# -gt 0 ]; do
  case $1 in
    --base-url) BASE_URL=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) die "usage: $0 [--base-url URL] [--out DIR]" ;;
  esac
done
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
mkdir -p "$OUT"
"$PY" - "$OUT" "$BASE_URL" <<'PYEOF'
import gzip, hashlib, io, pathlib, re, sys, tarfile, zipfile

out, base_url = pathlib.Path(sys.argv[1]), sys.argv[2]
src = pathlib.Path("operator/kubectl_lighthouse")
version = re.search(r'__version__ = "([^"]+)"', (src / "__init__.py").read_text()).group(1)
base_url = (base_url or f"https://lighthouse.dev/releases/v{version}").rstrip("/")

# The zipapp: fixed timestamps and order, so it is byte-for-byte reproducible.
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    for path in sorted(src.glob("*.py")):
        info = zipfile.ZipInfo(f"kubectl_lighthouse/{path.name}", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
        z.writestr(info, path.read_bytes())
    main = zipfile.ZipInfo("__main__.py", date_time=(1980, 1, 1, 0, 0, 0))
    main.compress_type, main.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
    z.writestr(main, b"from kubectl_lighthouse.cli import main\nraise SystemExit(main())\n")
app = b"#!/usr/bin/env python3\n" + buf.getvalue()
(out / "kubectl-lighthouse").write_bytes(app)
(out / "kubectl-lighthouse").chmod(0o755)

readme = (f"kubectl-lighthouse {version}: the kubectl plugin for Lighthouse (kubectl lighthouse --help).\n"
          "Needs python3 (3.11 or newer) and kubectl on PATH.\n").encode()
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for name, data, mode in (("kubectl-lighthouse", app, 0o755), ("README.txt", readme, 0o644)):
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime, info.uname, info.gname = len(data), mode, 0, "root", "root"
        tar.addfile(info, io.BytesIO(data))
archive = out / f"kubectl-lighthouse-{version}.tar.gz"
archive.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
sha = hashlib.sha256(archive.read_bytes()).hexdigest()

manifest = pathlib.Path("plugins/krew/lighthouse.yaml").read_text()
manifest = "\n".join(l for l in manifest.splitlines() if not l.startswith("#")) + "\n"
manifest = manifest.replace("BASE_URL", base_url).replace("VERSION", version).replace("SHA256", sha)
(out / "lighthouse.yaml").write_text(manifest)
print(f"{archive} sha256 {sha}")
PYEOF
log "Built $OUT/kubectl-lighthouse, its archive and the krew manifest $OUT/lighthouse.yaml"
