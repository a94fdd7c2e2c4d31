"""A stand-in trial container: serves one gauge on KUBETUNE_METRICS_ADDR:port until SIGTERM."""

import os
import signal
import sys
import time

from prometheus_client import CollectorRegistry, Gauge, start_http_server

registry = CollectorRegistry()
gauge = Gauge("kubetune_test_value", "A value set from the environment.", registry=registry)
gauge.set(float(os.environ.get("VALUE", "1")))
addr = os.environ.get("KUBETUNE_METRICS_ADDR", "127.0.0.1")
port = int(os.environ.get("KUBETUNE_METRICS_PORT", "9400"))
start_http_server(port, addr=addr, registry=registry)
print(f"serving on {addr}:{port}", flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
while True:
    time.sleep(0.2)
