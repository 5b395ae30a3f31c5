"""kubectl-lighthouse: the `kubectl lighthouse` plugin for operating LighthouseBridges.

Standard library only, and it talks to the cluster through the user's own `kubectl`, so it runs from the installed
package and from the single-file build that the krew manifest ships (hack/kubectl-plugin.sh). The operator never
imports it.
"""

__version__ = "0.1.0"
