"""Offline guard for the Python STAC tools, loaded through PYTHONPATH.

It first installs the guard of the STAC tools folder (the file named by
STACD_TOOLS_GUARD), which rejects every non-loopback connection and serves
JSON-schema GETs made through `urllib` and `requests` from the schema cache.
pystac reads schemas through `urllib3` directly when it is installed, which
that guard does not serve, so this module adds the same cache lookup to
`urllib3.PoolManager`. A URL missing from the cache still reaches the socket
guard and is refused.
"""

import importlib.util
import io
import os
import sys

_GUARD = os.environ.get("STACD_TOOLS_GUARD")


def _load_guard():
    spec = importlib.util.spec_from_file_location("stac_tools_offline_guard", _GUARD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _install_urllib3(guard) -> None:
    try:
        import urllib3
    except ImportError:
        return
    original = urllib3.PoolManager.urlopen

    def urlopen(self, method, url, redirect=True, **kwargs):
        cached = guard._cache_path(url) if method.upper() == "GET" else None
        if cached:
            guard._note("cache", f"{method} {url}")
            with open(cached, "rb") as f:
                body = f.read()
            return urllib3.HTTPResponse(
                body=io.BytesIO(body),
                headers={"Content-Type": "application/json"},
                status=200,
                preload_content=kwargs.get("preload_content", True),
                request_url=url,
            )
        return original(self, method, url, redirect=redirect, **kwargs)

    urllib3.PoolManager.urlopen = urlopen


if _GUARD:
    try:
        _install_urllib3(_load_guard())
    except Exception as exc:  # a half-installed guard must not pass silently
        sys.stderr.write(f"offline guard failed to install: {exc!r}\n")
        raise
