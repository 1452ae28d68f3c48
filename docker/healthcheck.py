"""Container healthcheck: exit 0 when the service on this container answers GET /healthz with 200.

Used by the images' HEALTHCHECK (so no curl is needed in a slim image). The port comes from
SYNNET_PORT like the service's own; an argument overrides the path, e.g. ``/readyz``.

It reads ``SYNNET_PORT`` from the environment itself rather than through ``synnet.settings``: a
probe runs every few seconds for the container's life and stays light by importing nothing of the
product (``tests/test_settings_docs.py`` keeps the name declared there).
"""

import os
import sys
import urllib.request


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
    url = f"http://127.0.0.1:{os.environ.get('SYNNET_PORT', '8000')}{path}"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError as error:  # refused, timed out, or an HTTP error status
        print(f"unhealthy: {url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
