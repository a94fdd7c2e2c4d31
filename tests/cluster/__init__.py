"""A simulated Kubernetes API server and kubelet for end-to-end tests (see README.md)."""
