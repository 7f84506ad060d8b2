"""An aiohttp app served on a free 127.0.0.1 port from a thread of its own."""

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

# A fake has nothing worth finishing: stopping cuts scripted latencies short.
STOP_GRACE_SECONDS = 0.25


class LocalServer:
    """An aiohttp app on a free 127.0.0.1 port, served from a thread of its own.

    Its own event loop keeps it answering whichever loop a test runs on, and
    while a sync test blocks.
    """

    def __init__(self, app: web.Application, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=name, daemon=True
        )
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=STOP_GRACE_SECONDS
        )
        self.port = 0

    def start(self) -> None:
        self._thread.start()
        self.port = self._run(self._listen())

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=10)

    async def _listen(self) -> int:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return int(self._runner.addresses[0][1])

    async def _close(self) -> None:
        await self._runner.cleanup()

        # Handlers still sleeping on a scripted latency must not outlive the loop.
        leftovers = asyncio.all_tasks() - {asyncio.current_task()}
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
