import { newSampleArray, type Dtype, type SampleArray, type WindowData } from './raster.ts';

/** Pixel-interleaved samples (band fastest: p0b0, p0b1, ..., p1b0, ...) from a band-after-band window read. */
export function interleave(win: WindowData, dtype: Dtype): SampleArray {
  const n = win.window.w * win.window.h;
  const k = win.data.length;
  const out = newSampleArray(dtype, n * k);
  for (let b = 0; b < k; b++) {
    const src = win.data[b];
    for (let p = 0, i = b; p < n; p++, i += k) out[i] = src[p];
  }
  return out;
}
