#!/usr/bin/python3
"""Measuring stick for bench/ingest.ts: rasterio/GDAL windowed reads of the given windows, best of N passes.
Usage: ingest_gdal_reads.py FILE WINDOWS_JSON REPEATS -> prints {"seconds": s, "pixels": n}"""
import json
import sys
import time

import rasterio
from rasterio.windows import Window

path, windows, repeats = sys.argv[1], json.loads(open(sys.argv[2]).read()), int(sys.argv[3])
best = None
for _ in range(repeats):
    # Reopen each pass: GDAL's block cache would otherwise serve the second pass without decoding.
    with rasterio.open(path) as src:
        t0 = time.perf_counter()
        pixels = 0
        for x, y, w, h in windows:
            arr = src.read(window=Window(x, y, w, h))
            pixels += arr.shape[1] * arr.shape[2]
        dt = time.perf_counter() - t0
    best = dt if best is None else min(best, dt)
print(json.dumps({"seconds": best, "pixels": pixels}))
