"""`lineinspect bench serve`: what the engine can do in-process against what the service delivers over HTTP.

Both are measured in the same run on the same images: the ceiling is decode + preprocess in the
decode pool overlapped with batched inference, with no HTTP; the service is loaded by a bounded
asyncio generator of raw keep-alive HTTP/1.1 connections on loopback at each concurrency. The
ceiling and the single-image latency are measured before the first load and after each one, and
each load compared with the baselines on either side of it, so that a machine whose speed drifts
favours neither.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from urllib.parse import urlsplit

import cv2
import httpx
import numpy as np
import uvloop
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from annotation.errors import LineInspectError
from serving.benchmarks.local_server import LocalServer
from serving.engine import LoadedModel, prepare
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
    server_errors: int = 0  # 5xx answers, and connections the server dropped

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
    """Latency of one image alone: decode + preprocess + inference of a batch of one (in the session the
    service infers a lone image with)."""
    times = []
    for i in range(count):
        started = perf_counter()
        model.solo.predict(prepare(images[i % len(images)], model.spec).x[None])
        times.append((perf_counter() - started) * 1e3)
    return np.asarray(times)


class _Connection:
    """One keep-alive HTTP/1.1 connection that posts prepared requests and reads whole answers.

    A load generator on the same two cores as the server takes CPU from it: a prepared request
    and a header parse cost a few microseconds, where an HTTP client library spends about a
    millisecond per request, so the service is measured, not the client.
    """

    def __init__(self, url: str, tls: ssl.SSLContext) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = tls if parts.scheme == "https" else None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, request: bytes) -> int:
        """The answer's status; the connection is re-opened when the server closed it."""
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, ssl=self.tls)
            self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
        fields = {k.strip().lower(): v.strip() for k, v in headers.items()}
        await self.reader.readexactly(int(fields.get(b"content-length", b"0")))
        if fields.get(b"connection", b"").lower() == b"close":
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _requests(url: str, images: list[bytes], headers: dict[str, str]) -> list[bytes]:
    """A complete raw `POST /v1/inspect` per image."""
    parts = urlsplit(url)
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    path = (parts.path.rstrip("/") or "") + "/v1/inspect"
    return [
        (f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {CONTENT_TYPES[probe(image)[0]]}\r\n"
         f"Content-Length: {len(image)}\r\n{extra}\r\n").encode() + image
        for image in images
    ]  # fmt: skip


async def http_load(
    url: str, images: list[bytes], concurrency: int, seconds: float, headers: dict[str, str]
) -> LoadResult:
    """`concurrency` connections posting raw images back to back for `seconds` (after one warm-up request each)."""
    requests = _requests(url, images, headers)
    tls = ssl.create_default_context()
    latencies: list[float] = []
    errors = server_errors = 0
    started = stop_at = 0.0

    async def client_loop(k: int, ready: asyncio.Barrier) -> None:
        nonlocal errors, server_errors, started, stop_at
        connection = _Connection(url, tls)
        try:
            await connection.post(requests[k % len(requests)])
            await ready.wait()
            if not started:  # the first one through starts the clock, once all are connected
                started = perf_counter()
                stop_at = started + seconds
            while perf_counter() < stop_at:
                begun = perf_counter()
                try:
                    status = await connection.post(requests[k % len(requests)])
                except (ConnectionError, asyncio.IncompleteReadError):
                    connection.close()
                    status = 599  # dropped by the server: counted as a server error
                latencies.append((perf_counter() - begun) * 1e3)
                errors += status != 200
                server_errors += status >= 500
                k += concurrency
        finally:
            connection.close()

    ready = asyncio.Barrier(concurrency)
    await asyncio.gather(*(client_loop(i, ready) for i in range(concurrency)))
    elapsed = perf_counter() - started
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) if latencies else (float("nan"),) * 3
    return LoadResult(
        concurrency, len(latencies), errors, elapsed, float(p50), float(p95), float(p99), server_errors=server_errors
    )


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
        result = uvloop.run(http_load(url, images, concurrency, seconds, headers))
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
    ceilings = [ceiling(model, images, settings, seconds / 2)]
    alone = single_image_ms(model, images)
    singles = [float(np.median(alone))]
    console.print(
        f"in-process ceiling: {ceilings[0]:.1f} img/s (decode+preprocess in {settings.threads()[1]} threads, "
        f"batches of {settings.max_batch_size}, no HTTP)",
        highlight=False,
    )
    console.print(f"single image decode+preprocess+infer: p50 {singles[0]:.1f} ms, "
                  f"p99 {np.percentile(alone, 99):.1f} ms", highlight=False)  # fmt: skip
    results = []
    for concurrency in concurrencies:  # both baselines again after each load: the machine's speed drifts
        results += run_loads(url, images, [concurrency], seconds, headers)
        ceilings.append(ceiling(model, images, settings, seconds / 2))
        singles.append(float(np.median(single_image_ms(model, images))))
    after_each = ", ".join(f"{c:.1f}" for c in ceilings[1:])
    console.print(f"in-process ceiling after each load: {after_each} img/s (each load is compared with the "
                  "mean of the ceilings just before and after it)", highlight=False)  # fmt: skip
    console.print(f"single image p50 after each load: {', '.join(f'{s:.1f}' for s in singles[1:])} ms",
                  highlight=False)  # fmt: skip
    table = Table("concurrency", "req/s", "of ceiling", "p50 ms", "p95 ms", "p99 ms", "errors", "mean batch")
    for r, before, after in zip(results, ceilings[:-1], ceilings[1:], strict=True):
        batch = f"{r.mean_batch:.1f}" if r.mean_batch else "-"
        share = r.throughput / ((before + after) / 2)
        table.add_row(str(r.concurrency), f"{r.throughput:.1f}", f"{share:.2f}", f"{r.p50_ms:.1f}",
                      f"{r.p95_ms:.1f}", f"{r.p99_ms:.1f}", str(r.errors), batch)  # fmt: skip
    console.print(table)
    if results and results[0].concurrency == 1:
        ratio = results[0].p99_ms / ((singles[0] + singles[1]) / 2)
        console.print(f"p99 at concurrency 1 / single-image p50 (mean of before and after): {ratio:.2f}",
                      highlight=False)  # fmt: skip
    if server:
        console.print(f"server resident memory: {rss_before:.0f} MB before, "
                      f"{resident_mb(server.process.pid):.0f} MB after", highlight=False)  # fmt: skip
