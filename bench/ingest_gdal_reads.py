#!/usr/bin/python3
"""Measuring stick for bench/ingest.ts and bench/ingest-http.ts (a /vsicurl/ path): one pass of rasterio/GDAL windowed reads of the given windows.
Usage: ingest_gdal_reads.py FILE WINDOWS_JSON THREADS -> prints {"seconds", "cpuSeconds", "pixels"}

THREADS 1 reads the windows in order on one thread. THREADS n > 1 reads them on n Python threads, each with its
own dataset handle (rasterio releases the GIL inside GDAL's RasterIO), taking windows from a shared queue.
GDAL_NUM_THREADS stays 1: GDAL's own multi-threaded decoding only splits requests that span several blocks.
Datasets are opened fresh on every call, so GDAL's block cache never serves a block decoded by an earlier pass."""
import json
import os
import sys
import threading
import time

os.environ["GDAL_NUM_THREADS"] = "1"
import rasterio  # noqa: E402 (after the environment it reads)
from rasterio.windows import Window  # noqa: E402

path, windows, threads = sys.argv[1], json.loads(open(sys.argv[2]).read()), int(sys.argv[3])
datasets = [rasterio.open(path) for _ in range(threads)]
pixels = [0] * threads
next_window = iter(windows)
lock = threading.Lock()


def reader(i):
    src = datasets[i]
    while True:
        with lock:
            win = next(next_window, None)
        if win is None:
            return
        x, y, w, h = win
        arr = src.read(window=Window(x, y, w, h))
        pixels[i] += arr.shape[1] * arr.shape[2]


cpu0, t0 = time.process_time(), time.perf_counter()
if threads == 1:
    reader(0)
else:
    workers = [threading.Thread(target=reader, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
for src in datasets:
    src.close()
print(json.dumps({"seconds": seconds, "cpuSeconds": cpu_seconds, "pixels": sum(pixels)}))
