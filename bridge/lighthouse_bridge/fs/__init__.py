"""The shadow filesystem: a FUSE view of the bridge's project state (pyfuse3 on trio).

Layers (see README.md): ``model`` (pure tree/inode model, no FUSE, no HTTP), ``client`` (the bridge HTTP API as a
``Source``), ``ops`` (the pyfuse3 Operations adapter), ``mount`` (the trio process), ``supervisor`` (``run``).
"""
