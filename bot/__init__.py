"""GridBot service core: settings, Redis, the WeCom adapter, the callback app and the router.

health.py (each long-running loop's state for /healthz; backoff; giving up exits 1),
seal.py (inbox entries sealed at rest), ratelog.py (one log line per kind of repeated error).
"""
