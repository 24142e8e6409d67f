"""Protocol-faithful local simulators of the push gateways Herald delivers to.

``python -m gatewaysim`` serves each simulator on its own HTTPS port (HTTP/2 and HTTP/1.1) and
a control API on a plain HTTP port (``server.py``, ``httpserver.py``): FCM HTTP v1 (``fcm.py``),
APNs, Web Push, SMTP, the HTTP SMS gateway, WNS, Huawei Push Kit (``hms.py``) and ADM
(``adm.py``). Each subclasses ``gateway.Gateway`` and is listed in ``server.GATEWAYS``. See
README.md.
"""
