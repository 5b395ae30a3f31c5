"""The FUSE CSI node plugin (`lighthouse-fuse-csi`): lets a bridge pod that passes Pod Security "restricted" have its
shadow filesystem. The plugin runs privileged on every node (a DaemonSet of the chart); the bridge pod asks for a
CSI ephemeral inline volume of driver fuse.lighthouse.dev and gets, in it, a socket (lighthouse_fusefd): its FUSE
process asks there for a mount, the plugin opens /dev/fuse, mounts it with `fd=N` and hands over the descriptor.
The pod needs no capability, no device and no privilege escalation. docs/fuse-modes.md says why this shape.

Modules: kernel.py (mount(2), umount2(2), mountinfo), volumes.py (published volumes, their sockets, the state that
survives a plugin restart), server.py (the CSI Identity and Node services and the kubelet's plugin registration),
cli.py. proto/ is generated (hack/update-csi-proto.sh).
"""

DRIVER_NAME = "fuse.lighthouse.dev"
__version__ = "0.1.0"
