"""What the proxy says about its traffic: the access log, ``/metrics``, ``--inspect`` panels, redaction.

Each exchange is observed once, when it ends, from its ``AccessRecord``; nothing here runs per event.
Faults are reported by ``errors.ProxyError.kind``, never by reading a message.
"""
