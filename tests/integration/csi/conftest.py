"""Fixtures of the CSI node plugin tests: a temporary kubelet directory, and the real bridge of the FUSE tests."""

from tests.integration.csi.harness import kubelet_dir
from tests.integration.fs.conftest import bridge

__all__ = ["bridge", "kubelet_dir"]
