"""Pure manifest builders: sweep + trial -> Kubernetes objects as dicts."""
