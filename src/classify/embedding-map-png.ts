import { Canvas, TEXT_HEIGHT } from './canvas.ts';
import type { LabelClass } from './labels-types.ts';
import { classColor } from './palette.ts';
import { fitPca, pcaTransform } from './pca.ts';

/** Feature rows projected onto their first two principal components, one dot per tile coloured by class. */
export function embeddingMapPng(rows: readonly ArrayLike<number>[], labels: readonly number[], classes: LabelClass[], title: string): Buffer {
  const size = 640;
  const legend = 220;
  const pad = 30;
  const canvas = new Canvas(size + legend, size + pad);
  const pca = fitPca(rows, 2);
  const points = rows.map((r) => pcaTransform(pca, r));
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1] ?? 0);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (v: number) => pad + ((v - x0) / (x1 - x0 || 1)) * (size - 2 * pad);
  const sy = (v: number) => size - ((v - y0) / (y1 - y0 || 1)) * (size - 2 * pad);
  const colourIndex = new Map(classes.map((c, i) => [c.id, i]));
  canvas.strokeRect(pad - 4, pad - 4, size - 2 * pad + 8, size - 2 * pad + 8, [180, 180, 180]);
  points.forEach((p, i) => canvas.fillRect(sx(p[0]) - 1, sy(p[1] ?? 0) - 1, 3, 3, classColor(colourIndex.get(labels[i]) ?? 0)));
  canvas.text(pad, 8, title, [0, 0, 0], 2);
  canvas.text(pad, size + 8, 'PC1 ->   PC2 UP', [90, 90, 90], 2);
  classes.forEach((c, i) => {
    const y = pad + i * (TEXT_HEIGHT * 2 + 8);
    canvas.fillRect(size + 4, y, 14, 14, classColor(i));
    canvas.text(size + 24, y, c.name.slice(0, 15), [0, 0, 0], 2);
  });
  return canvas.toPng();
}
