"""``python -m service``: serve the model store with uvicorn.

Host, port and log level come from the settings (``SYNNET_HOST``, ``SYNNET_PORT``,
``SYNNET_LOG_LEVEL``); ``--host``/``--port``/``--model-store`` override them, handy when
starting several replicas behind a load balancer.

SIGTERM (or Ctrl+C) drains before uvicorn shuts down: ``/readyz`` answers 503 at once and new
syntheses get 503 ``shutting_down``, while the port stays open and the syntheses in flight
finish; once none is left, or ``SYNNET_DRAIN_TIMEOUT_S`` has passed (those still running are
then cut, each answered with a JSON 503), uvicorn closes the connections and the process exits
0. A second signal during the drain stops at once, as uvicorn does.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import FastAPI

from service.app import create_app
from service.runtime import Runtime
from synnet.errors import SynnetError
from synnet.settings import get_settings
from synnet.store import check_serving, resolve_device

logger = logging.getLogger(__name__)

# Left to uvicorn after the drain: responses being written, requests other than syntheses. Past
# it uvicorn cancels what remains (answered with a JSON 503 by service.middleware).
SHUTDOWN_GRACE_S = 5


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a drain between the first SIGTERM/SIGINT and its own shutdown."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, drain_timeout_s: float) -> None:
        super().__init__(config)
        self.app = app
        self.drain_timeout_s = drain_timeout_s
        self.drain_deadline: float | None = None
        self.cut = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain_deadline is not None or not self.started:
            super().handle_exit(sig, frame)  # a second signal, or one before serving: uvicorn's way
            return
        # Not recorded as a captured signal: uvicorn would re-raise it on exit (status 143).
        self.drain_deadline = time.monotonic() + self.drain_timeout_s
        logger.info("%s: draining for up to %g s", signal.Signals(sig).name, self.drain_timeout_s)
        runtime = self._runtime()
        if runtime is not None:
            runtime.begin_drain()

    async def on_tick(self, counter: int) -> bool:
        if self.drain_deadline is not None and not self.should_exit:
            runtime = self._runtime()
            in_flight = runtime.admission.in_flight if runtime is not None else 0
            if in_flight == 0:
                logger.info("drained: no synthesis in flight")
                self.should_exit = True
            elif time.monotonic() >= self.drain_deadline and not self.cut and runtime is not None:
                self.cut = True
                logger.warning("drain timeout: cutting %d synthesis(es) still in flight", runtime.admission.cut())
        return await super().on_tick(counter)

    def _runtime(self) -> Runtime | None:
        return getattr(self.app.state, "runtime", None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m service", description="Serve the model store over REST.")
    parser.add_argument("--host", help="bind address (default: SYNNET_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: SYNNET_PORT or 8000)")
    parser.add_argument("--model-store", type=Path, help="model store folder (default: SYNNET_MODEL_STORE)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    try:
        settings = get_settings().model_copy(update=overrides)
        # a device, format or precision this machine cannot serve stops here, before uvicorn starts
        device = resolve_device(settings.device)
        store = settings.service_store()
        check_serving(device, settings.model_format, settings.precision, settings.compile, store=store)
    except SynnetError as exc:  # a bad SYNNET_* value (synnet.settings.SettingsError) included
        parser.exit(2, f"error: {exc}\n")
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    DrainingServer(config, app, settings.drain_timeout_s).run()


if __name__ == "__main__":
    main()
