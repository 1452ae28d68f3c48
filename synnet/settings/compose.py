"""The ``SYNNET_*`` variables of ``docker-compose.yml``, which Compose and nginx read, not the product.

They share the prefix, so an operator looks for them beside the settings; declaring them here
lets one command write both docs tables and one test find any ``SYNNET_*`` name that neither
declares. The product never reads them: this is a plain model, not a settings class.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from synnet.settings.groups import setting


class ComposeVariables(BaseModel):
    """What ``docker compose`` substitutes (e.g. ``${SYNNET_REPLICAS:-2}``) or hands to nginx's template."""

    title: ClassVar[str] = "Docker Compose"

    http_port: int = setting(8000, "host port of the CPU service (`synnet`)")
    gpu_http_port: int = setting(8001, "host port of the GPU service (profile `gpu`)")
    lb_http_port: int = setting(8080, "host port of nginx in front of the replicas (profile `scaled`)")
    replicas: int = setting(2, "how many CPU replicas the profile `scaled` starts")
    upstream_servers: str = setting(
        "server synnet-replica:8000;",
        "nginx's `server` lines for the replicas, set in `lb`'s environment and substituted into "
        "`docker/nginx/synnet.conf.template`",
    )
    uid: int = setting(1000, "user the training containers run as, so that what they write is yours")
    gid: int = setting(1000, "group the training containers run as")
