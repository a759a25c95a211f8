"""The operator process's memory settings: small TLS read buffers and the periodic heap trim."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import os
import threading
from collections.abc import Iterator

import pytest

from mlops_operator import runner
from tests.procfs import vm_rss_kib


def rss_mib() -> float:
    return vm_rss_kib(os.getpid()) / 1024


@pytest.fixture
def tls_max_size() -> Iterator[None]:
    saved = asyncio.sslproto.SSLProtocol.max_size
    yield
    asyncio.sslproto.SSLProtocol.max_size = saved


@pytest.mark.usefixtures("tls_max_size")
def test_tls_read_buffers_shrink_and_never_grow() -> None:
    asyncio.sslproto.SSLProtocol.max_size = 256 * 1024
    runner.limit_tls_read_buffers()
    assert asyncio.sslproto.SSLProtocol.max_size == runner.TLS_READ_BUFFER

    asyncio.sslproto.SSLProtocol.max_size = 16 * 1024  # already smaller: left alone
    runner.limit_tls_read_buffers()
    assert asyncio.sslproto.SSLProtocol.max_size == 16 * 1024


def test_heap_trim_returns_what_a_worker_thread_freed() -> None:
    """Memory freed in a thread's malloc arena, fragmented by a few survivors, stays in the RSS
    until malloc_trim gives its free pages back (what the request threads leave after a burst)."""
    trim = runner.heap_trimmer()
    if trim is None:
        pytest.skip("the C library has no malloc_trim")
    survivors: list[bytes] = []

    def burst() -> None:
        # 1 KiB objects go to malloc (pymalloc takes only <= 512 bytes); every 16th survives
        chunks = [bytes(1024) + i.to_bytes(4, "little") for i in range(200_000)]
        survivors.extend(chunks[::16])

    worker = threading.Thread(target=burst)
    worker.start()
    worker.join()
    before = rss_mib()
    trim()
    after = rss_mib()
    assert len(survivors) == 12_500
    assert before - after > 64, f"RSS {before:.0f} MiB before the trim, {after:.0f} MiB after"


def test_trim_heap_forever_trims_each_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(runner, "heap_trimmer", lambda: lambda: calls.append(1))

    async def three_trims_then_cancel() -> None:
        task = asyncio.create_task(runner.trim_heap_forever(interval=0.01))
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(three_trims_then_cancel(), timeout=5))
    assert len(calls) >= 3


def test_trim_heap_forever_ends_where_there_is_no_trim(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "heap_trimmer", lambda: None)
    asyncio.run(asyncio.wait_for(runner.trim_heap_forever(interval=0.01), timeout=5))
