"""python -m kubectl_lighthouse (and the single-file build) run the plugin."""

from kubectl_lighthouse.cli import main

raise SystemExit(main())
