"""TLS to the upstreams (NET-02): which certificate authorities to trust, the client certificate, and a
one-line hint for each way a handshake fails.

Rules:
- Trust: an upstream's ``ca_file`` (and the process's ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, which the
  configuration hands in as that upstream's defaults) *replace* the default bundle, as curl's
  ``--cacert`` and OpenSSL's variables do; with none of them, certifi's bundle, the one httpx uses. The
  code passes ``cafile=certifi.where()``, so ``ssl.create_default_context()``'s own reading of the
  variables (``set_default_verify_paths``) never happens: they are read once, by config/load.py, and
  applied here explicitly (https://docs.python.org/3/library/ssl.html#ssl.get_default_verify_paths).
- ``verify = false`` is only ever an upstream's explicit setting (routing logs a warning at each start).
- A context is built once per distinct setting (``context``), when the first connection needs it; the
  configuration builds the non-default ones at start (``check``) so that a bad file is a start error.
"""

from __future__ import annotations

import functools
import os
import ssl

from ..routing.reach import TLSSettings

__all__ = ["check", "context", "tls_failure"]


@functools.cache
def context(settings: TLSSettings) -> ssl.SSLContext:
    """The context of ``settings``; built once each (loading a bundle takes milliseconds)."""
    if settings.ca_file is not None or settings.ca_dir is not None:
        ctx = ssl.create_default_context(cafile=settings.ca_file, capath=settings.ca_dir)
    else:
        try:
            import certifi
        except ImportError:  # pragma: no cover - certifi comes with httpx
            ctx = ssl.create_default_context()
        else:
            ctx = ssl.create_default_context(cafile=certifi.where())
    if settings.cert_file is not None:
        ctx.load_cert_chain(settings.cert_file, settings.key_file)
    if not settings.verify:
        ctx.check_hostname = False  # (before verify_mode: Python refuses CERT_NONE with check_hostname)
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def check(settings: TLSSettings) -> str | None:
    """What is wrong with ``settings`` (a file that cannot be read or is not a certificate or key), or
    None; the non-default contexts are built here, at start."""
    if settings.key_file is not None and settings.cert_file is None:
        return "key_file needs cert_file"
    if settings.default:
        return None
    for key in ("ca_file", "cert_file", "key_file"):
        path = getattr(settings, key)
        if path is not None and not os.path.isfile(path):
            return f"cannot read {path} ({key}): no such file"
    if settings.ca_dir is not None and not os.path.isdir(settings.ca_dir):
        return f"cannot read {settings.ca_dir} (SSL_CERT_DIR): no such directory"
    try:
        context(settings)
    except (ssl.SSLError, OSError) as exc:
        return f"cannot load the certificate files: {exc.strerror or exc}"
    return None


# OpenSSL's X509_V_ERR_* codes (https://docs.openssl.org/master/man3/X509_STORE_CTX_get_error/)
_UNTRUSTED = {18, 19, 20, 21, 2}  # self-signed, self-signed in chain, unknown issuer, first cert, no issuer
_EXPIRED = 10
_HOSTNAME = 62


def tls_failure(exc: ssl.SSLError, host: str) -> str:
    """One line: what failed in the TLS handshake with ``host``, and what to do about it."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code in _UNTRUSTED:
            return (
                f"TLS: the certificate of {host} is signed by a CA this proxy does not trust "
                f"({exc.verify_message}); hint: set ca_file (per upstream) or SSL_CERT_FILE / SSL_CERT_DIR"
            )
        if code == _HOSTNAME:
            return (
                f"TLS: the certificate does not name {host} ({exc.verify_message}); hint: check the host of "
                "base_url (a TLS-inspecting company proxy? then its CA in ca_file or SSL_CERT_FILE)"
            )
        if code == _EXPIRED:
            return f"TLS: the certificate of {host} has expired; hint: the upstream must renew it"
        return f"TLS: the certificate of {host} was refused ({exc.verify_message}); hint: set ca_file"
    reason = (exc.reason or "").upper()
    if "CERTIFICATE_REQUIRED" in reason or "HANDSHAKE_FAILURE" in reason or "BAD_CERTIFICATE" in reason:
        return (
            f"TLS: {host} asks for a client certificate ({exc.reason}); hint: set cert_file and key_file "
            "for this upstream"
        )
    return f"TLS handshake with {host} failed ({exc.reason or exc}); hint: check ca_file, cert_file, verify"
