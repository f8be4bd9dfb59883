import { Canvas, TEXT_HEIGHT, textWidth, type Rgb } from './canvas.ts';
import type { LabelClass } from './labels-types.ts';
import type { ClassificationMetrics } from './metrics.ts';

/**
 * The confusion matrix as a labelled grid: rows are true classes, columns predicted ones, each cell shaded by
 * the share of its row and printed with its count. Columns are numbered; the row labels give number and name.
 */
export function confusionMatrixPng(m: ClassificationMetrics, classes: LabelClass[], title: string): Buffer {
  const scale = 2;
  const cell = 44;
  const n = m.classes.length;
  const nameOf = (id: number) => classes.find((c) => c.id === id)?.name ?? String(id);
  const rowLabels = m.classes.map((id, i) => `${i + 1} ${nameOf(id)}`.slice(0, 24));
  const left = Math.max(...rowLabels.map((l) => textWidth(l, scale)), textWidth('TRUE', scale)) + 16;
  const top = 3 * (TEXT_HEIGHT * scale + 8) + 8;
  const width = Math.max(left + n * cell + 16, textWidth(title, scale) + 24);
  const height = top + n * cell + 16 + TEXT_HEIGHT * scale;
  const canvas = new Canvas(width, height);
  canvas.text(8, 8, title, [0, 0, 0], scale);
  canvas.text(left, 8 + TEXT_HEIGHT * scale + 8, 'PREDICTED', [60, 60, 60], scale);
  canvas.text(8, top - TEXT_HEIGHT * scale - 6, 'TRUE', [60, 60, 60], scale);
  m.classes.forEach((_, j) => {
    const label = String(j + 1);
    canvas.text(left + j * cell + (cell - textWidth(label, scale)) / 2, top - TEXT_HEIGHT * scale - 6, label, [0, 0, 0], scale);
  });
  m.confusion.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    canvas.text(8, top + i * cell + (cell - TEXT_HEIGHT * scale) / 2, rowLabels[i], [0, 0, 0], scale);
    row.forEach((count, j) => {
      const share = count / total;
      const shade: Rgb = i === j ? [Math.round(255 - 200 * share), Math.round(255 - 90 * share), Math.round(255 - 200 * share)] : [255, Math.round(255 - 200 * share), Math.round(255 - 200 * share)];
      canvas.fillRect(left + j * cell, top + i * cell, cell, cell, shade);
      canvas.strokeRect(left + j * cell, top + i * cell, cell + 1, cell + 1, [120, 120, 120]);
      const text = String(count);
      canvas.text(left + j * cell + (cell - textWidth(text, scale)) / 2, top + i * cell + (cell - TEXT_HEIGHT * scale) / 2, text, share > 0.6 ? [255, 255, 255] : [0, 0, 0], scale);
    });
  });
  canvas.text(8, height - TEXT_HEIGHT * scale - 6, `N ${m.count}  ACC ${(m.accuracy * 100).toFixed(1)}%  MACRO-F1 ${m.macroF1.toFixed(3)}`, [0, 0, 0], scale);
  return canvas.toPng();
}
