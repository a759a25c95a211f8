"""mlops-operator: the machine-learning lifecycle as Kubernetes custom resources."""

__version__ = "0.1.0"
__all__ = ["__version__"]
