"""Protocol-faithful local simulators of the push gateways Herald delivers to.

``python -m gatewaysim`` serves each simulator on its own HTTPS port (HTTP/2 and HTTP/1.1) and
a control API on a plain HTTP port (``server.py``, ``httpserver.py``). So far: FCM HTTP v1 with
its OAuth token endpoint (``fcm.py``). New simulators subclass ``gateway.Gateway`` and are
listed in ``server.GATEWAYS``. See README.md.
"""
