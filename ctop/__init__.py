"""ctop: top for cgroups, containers and pods on a Linux node."""

__version__ = "0.1.0"
