"""What the app holds while it runs: settings, metrics, the model store and one batcher per model.

The lifespan creates a :class:`Runtime`, starts loading the models in the background (so
``/healthz`` answers at once and ``/readyz`` says 503 until loading is done), and stops the
batchers on shutdown. Routes reach it through ``request.app.state.runtime``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from service.admission import AdmissionGate
from service.batcher import Batcher
from service.errors import NotReadyError
from service.observability import ServiceMetrics
from synnet.settings import Settings
from synnet.store import LoadedModel, ModelStore, check_serving, resolve_device

logger = logging.getLogger(__name__)


class Runtime:
    """The running service's state; built in the lifespan, one per app."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.device = resolve_device(settings.device)
        # bf16 on a CPU without it stops the start here, with the reason, before any model loads
        check_serving(
            self.device, settings.model_format, settings.precision, settings.compile, store=settings.service_store()
        )
        self.batch_size = settings.batch_size_for(self.device.type)
        # One worker thread: forward passes run one at a time, each using all intra-op threads.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="synnet-inference")
        self.admission = AdmissionGate(
            settings.max_queued_requests,
            settings.retry_after_s,
            max_bytes=settings.decoded_budget_bytes(),
            on_change=self.metrics.in_flight.set,
        )
        self.store: ModelStore | None = None
        self.batchers: dict[str, Batcher] = {}
        self.ready = asyncio.Event()
        self.load_seconds: float | None = None
        self._loading: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin loading the models; returns at once."""
        if self.settings.torch_threads:
            torch.set_num_threads(self.settings.torch_threads)
        self._loading = asyncio.get_running_loop().create_task(self._load(), name="load-models")

    async def stop(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
            await asyncio.gather(self._loading, return_exceptions=True)
        for batcher in self.batchers.values():
            await batcher.stop()
        self.executor.shutdown(wait=True, cancel_futures=True)

    async def _load(self) -> None:
        settings = self.settings
        logger.info(
            "loading models from %s on %s (batch size %d, delay %g s; %s, %s%s)",
            settings.service_store(), self.device, self.batch_size, settings.batch_delay_for(self.device.type),
            settings.model_format, settings.precision, f", compiling {settings.compile}" if settings.compile else "",
        )
        started = time.perf_counter()
        try:
            store = await asyncio.get_running_loop().run_in_executor(
                self.executor,
                lambda: ModelStore.load(
                    settings.service_store(), self.device, autocast=settings.autocast_dtype,
                    channels_last=settings.channels_last, model_format=settings.model_format,
                    precision=settings.precision, compile=settings.compile,
                ),
            )
        except Exception:
            logger.exception("loading the model store failed")
            store = ModelStore({}, [])
        for model in store:
            self.batchers[model.name] = self._batcher(model)
            self.batchers[model.name].start()
        self.store = store
        self.load_seconds = time.perf_counter() - started
        self.metrics.models_available.set(len(store))
        self.metrics.models_failed.set(len(store.unavailable))
        self.ready.set()
        logger.info(
            "%d model(s) serving, %d unavailable; loading and warm-up took %.1f s",
            len(store), len(store.unavailable), self.load_seconds,
        )

    def _batcher(self, model: LoadedModel) -> Batcher:
        metrics, name = self.metrics, model.name

        def observe(slices: int, chunks: int, seconds: float) -> None:
            metrics.batch_size.labels(name).observe(slices)
            metrics.batch_chunks.labels(name).observe(chunks)
            metrics.inference_seconds.labels(name).observe(seconds)

        return Batcher(
            name,
            model.forward,
            self.executor,
            max_batch_size=self.batch_size,
            max_delay_s=self.settings.batch_delay_for(self.device.type),
            observe=observe,
            on_queue_depth=metrics.queue_depth.labels(name).set,
        )

    @property
    def draining(self) -> bool:
        return self.admission.draining

    def begin_drain(self) -> None:
        """SIGTERM: /readyz turns 503 and new syntheses are refused; those admitted go on."""
        if not self.admission.draining:
            logger.info("draining: %d synthesis(es) in flight, admitting no more", self.admission.in_flight)
        self.admission.begin_drain()

    def require_store(self) -> ModelStore:
        """The loaded model store, or a 503 while models are still loading."""
        if self.store is None:
            raise NotReadyError("models are still loading; retry shortly", retry_after_s=self.settings.retry_after_s)
        return self.store
