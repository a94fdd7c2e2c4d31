"""kubetune: Kubernetes-native hyperparameter tuning for LLM fine-tuning."""

__version__ = "0.1.0"

API_GROUP = "kubetune.dev"
API_VERSION = "v1alpha1"
KIND = "HyperparameterSweep"
PLURAL = "hyperparametersweeps"
SINGULAR = "hyperparametersweep"
SHORT_NAMES = ["hps", "sweep"]
CATEGORIES = ["kubetune"]
