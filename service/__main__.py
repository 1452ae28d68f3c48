"""``python -m service``: serve the model store with uvicorn.

Host, port and log level come from the settings (``SYNNET_HOST``, ``SYNNET_PORT``,
``SYNNET_LOG_LEVEL``); ``--host``/``--port``/``--model-store`` override them, handy when
starting several replicas behind a load balancer.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn

from service.app import create_app
from service.settings import get_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m service", description="Serve the model store over REST.")
    parser.add_argument("--host", help="bind address (default: SYNNET_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: SYNNET_PORT or 8000)")
    parser.add_argument("--model-store", type=Path, help="model store folder (default: SYNNET_MODEL_STORE)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    settings = get_settings().model_copy(update=overrides)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
