"""Optional API-key authentication through the ``X-API-Key`` header.

Off while no key is configured (``SYNNET_API_KEYS`` empty); once keys are set, the routes that
depend on :func:`require_api_key` answer 401 without a valid key. Liveness and readiness
probes, the docs and the web page stay open.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends
from fastapi.security import APIKeyHeader

from service.deps import SettingsDep
from service.errors import UnauthorizedError

API_KEY_HEADER = "X-API-Key"

# auto_error=False: a missing key is our own 401 in the common error form; the scheme is still
# declared in OpenAPI so /docs offers an "Authorize" button.
_api_key_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="needed once keys are configured")


def require_api_key(settings: SettingsDep, api_key: Annotated[str | None, Depends(_api_key_scheme)]) -> None:
    """Raise :class:`UnauthorizedError` (401) unless auth is off or ``api_key`` is a configured key."""
    keys = settings.api_keys
    if not keys:
        return
    if not api_key:
        raise UnauthorizedError(f"this service requires an API key in the {API_KEY_HEADER} header")
    # compare_digest against every key: the time taken does not reveal how much of a key matched.
    if not any(hmac.compare_digest(api_key.encode(), key.encode()) for key in keys):
        raise UnauthorizedError(f"the {API_KEY_HEADER} header does not hold a valid API key")


Authorized = Annotated[None, Depends(require_api_key)]
