"""`lineinspect bench serve`: what the engine can do in-process against what the service delivers over HTTP.

Both are measured in the same run on the same images: the ceiling is decode + preprocess in the
decode pool overlapped with batched inference, with no HTTP; the service is loaded by a bounded
asyncio + httpx generator on loopback at each concurrency.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import cv2
import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from annotation.errors import LineInspectError
from serving.engine import LoadedModel, prepare
from serving.local_server import LocalServer
from serving.settings import EngineSettings, cpu_count
from vision.preprocess import probe

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "TIFF": "image/tiff"}


@dataclass
class LoadResult:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_batch: float | None = None  # from the server's metrics

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


def sample_images(folder: Path | None, count: int = 64) -> list[bytes]:
    """Images from `folder`, or `count` generated 512x512 JPEGs with some structure (not a flat colour)."""
    if folder is not None:
        paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:count]
        if not paths:
            raise LineInspectError(f"no images in {folder}")
        return [p.read_bytes() for p in paths]
    rng = np.random.default_rng(0)
    images = []
    for _ in range(count):
        noise = rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)
        images.append(
            cv2.imencode(".jpg", cv2.GaussianBlur(noise, (0, 0), 3), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
        )
    return images


def ceiling(model: LoadedModel, images: list[bytes], settings: EngineSettings, seconds: float) -> float:
    """Images per second with no HTTP: the next batch decodes in the pool while this one is inferred."""
    _, decode_threads = settings.threads()
    size = settings.max_batch_size

    def inputs(k: int) -> np.ndarray:
        return prepare(images[k % len(images)], model.spec).x

    with ThreadPoolExecutor(decode_threads) as pool:
        nxt = [pool.submit(inputs, i) for i in range(size)]
        done, started = 0, perf_counter()
        while perf_counter() - started < seconds:
            batch = np.stack([f.result() for f in nxt])
            nxt = [pool.submit(inputs, done + size + i) for i in range(size)]
            model.classifier.predict(batch)
            done += size
        elapsed = perf_counter() - started
        for f in nxt:
            f.cancel()
    return done / elapsed


def single_image_ms(model: LoadedModel, images: list[bytes], count: int = 100) -> np.ndarray:
    """Latency of one image alone: decode + preprocess + inference of a batch of one."""
    times = []
    for i in range(count):
        started = perf_counter()
        model.classifier.predict(prepare(images[i % len(images)], model.spec).x[None])
        times.append((perf_counter() - started) * 1e3)
    return np.asarray(times)


async def http_load(
    url: str, images: list[bytes], concurrency: int, seconds: float, headers: dict[str, str]
) -> LoadResult:
    """`concurrency` clients posting raw images back to back for `seconds` (after one warm-up request each).

    Each client has a connection pool of its own: one shared pool costs the generator more CPU per
    request as connections are added, which on a small machine takes CPU from the server under test.
    """
    types = [CONTENT_TYPES[probe(image)[0]] for image in images]
    tls = ssl.create_default_context()  # built once: each client building its own costs ~30 ms of CPU
    latencies: list[float] = []
    errors = 0
    started = stop_at = 0.0

    async def client_loop(k: int, ready: asyncio.Barrier) -> None:
        nonlocal errors, started, stop_at
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, verify=tls) as client:

            async def post(i: int) -> bool:
                answer = await client.post("/v1/inspect", content=images[i], headers={"content-type": types[i]})
                return answer.status_code == 200

            await post(k % len(images))
            await ready.wait()
            if not started:  # the first one through starts the clock, once all are connected
                started = perf_counter()
                stop_at = started + seconds
            while perf_counter() < stop_at:
                begun = perf_counter()
                ok = await post(k % len(images))
                latencies.append((perf_counter() - begun) * 1e3)
                errors += not ok
                k += concurrency

    ready = asyncio.Barrier(concurrency)
    await asyncio.gather(*(client_loop(i, ready) for i in range(concurrency)))
    elapsed = perf_counter() - started
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) if latencies else (float("nan"),) * 3
    return LoadResult(concurrency, len(latencies), errors, elapsed, float(p50), float(p95), float(p99))


def batch_totals(url: str, headers: dict[str, str]) -> tuple[float, float]:
    """(images inferred, batches run) so far, from the server's /metrics."""
    text = httpx.get(f"{url}/metrics", headers=headers, timeout=10).text
    for family in text_string_to_metric_families(text):
        if family.name == "lineinspect_batch_size":
            values = {s.name: s.value for s in family.samples}
            return values["lineinspect_batch_size_sum"], values["lineinspect_batch_size_count"]
    raise LineInspectError(f"{url}/metrics has no lineinspect_batch_size: is it a lineinspect service?")


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LineInspectError(f"no VmRSS for process {pid}")


def run_loads(
    url: str, images: list[bytes], concurrencies: list[int], seconds: float, headers: dict[str, str]
) -> list[LoadResult]:
    results = []
    for concurrency in concurrencies:
        images_before, batches_before = batch_totals(url, headers)
        result = asyncio.run(http_load(url, images, concurrency, seconds, headers))
        images_after, batches_after = batch_totals(url, headers)
        if batches_after > batches_before:
            result.mean_batch = (images_after - images_before) / (batches_after - batches_before)
        results.append(result)
    return results


def cpu_note() -> str:
    """Other work on the machine shares its cores with both measurements: say how much there was."""
    return f"{cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"


def bench_serve(
    model: LoadedModel,
    settings: EngineSettings,
    images: list[bytes],
    concurrencies: list[int],
    seconds: float,
    server: LocalServer | None,
    url: str,
    headers: dict[str, str],
    console: Console,
) -> None:
    """Measure and print the ceiling, the lone-image latency, and the service at each concurrency."""
    rss_before = resident_mb(server.process.pid) if server else None
    console.print(f"{len(images)} images, {model.name} {model.version} at {model.spec.height}x{model.spec.width}, "
                  f"{cpu_note()}", highlight=False)  # fmt: skip
    best = ceiling(model, images, settings, seconds)
    alone = single_image_ms(model, images)
    console.print(
        f"in-process ceiling: {best:.1f} img/s (decode+preprocess in {settings.threads()[1]} threads, "
        f"batches of {settings.max_batch_size}, no HTTP)",
        highlight=False,
    )
    console.print(f"single image decode+preprocess+infer: p50 {np.median(alone):.1f} ms, "
                  f"p99 {np.percentile(alone, 99):.1f} ms", highlight=False)  # fmt: skip
    results = run_loads(url, images, concurrencies, seconds, headers)
    table = Table("concurrency", "req/s", "of ceiling", "p50 ms", "p95 ms", "p99 ms", "errors", "mean batch")
    for r in results:
        batch = f"{r.mean_batch:.1f}" if r.mean_batch else "-"
        table.add_row(str(r.concurrency), f"{r.throughput:.1f}", f"{r.throughput / best:.2f}", f"{r.p50_ms:.1f}",
                      f"{r.p95_ms:.1f}", f"{r.p99_ms:.1f}", str(r.errors), batch)  # fmt: skip
    console.print(table)
    if results and results[0].concurrency == 1:
        ratio = results[0].p99_ms / float(np.median(alone))
        console.print(f"p99 at concurrency 1 / single-image p50: {ratio:.2f}", highlight=False)
    if server:
        console.print(f"server resident memory: {rss_before:.0f} MB before, "
                      f"{resident_mb(server.process.pid):.0f} MB after", highlight=False)  # fmt: skip
