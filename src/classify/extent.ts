import type { BBox } from '../store/index.ts';

/** The bbox of points that `project` gives for a pixel rectangle's densified edges (curved in other CRSs). */
export function projectedPixelBbox(width: number, height: number, project: (col: number, row: number) => [number, number], steps = 16): BBox {
  const box: BBox = [Infinity, Infinity, -Infinity, -Infinity];
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    for (const [c, r] of [[t * width, 0], [t * width, height], [0, t * height], [width, t * height]]) {
      const [x, y] = project(c, r);
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      box[0] = Math.min(box[0], x);
      box[1] = Math.min(box[1], y);
      box[2] = Math.max(box[2], x);
      box[3] = Math.max(box[3], y);
    }
  }
  return box;
}

export function bboxesOverlap(a: BBox, b: BBox): boolean {
  return a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
}

export function formatBbox(b: BBox): string {
  return `[${b.map((v) => v.toFixed(5)).join(', ')}]`;
}
