"""The Kopf operator: thin handlers that ask the engine and act on the cluster."""
