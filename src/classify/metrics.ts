/** Per-class and overall scores of predictions against truth; class order follows `classes`. */
export interface ClassificationMetrics {
  classes: number[];
  /** confusion[t][p]: rows are true classes, columns predicted ones. */
  confusion: number[][];
  accuracy: number;
  /** Unweighted mean F1 over the classes present in the truth. */
  macroF1: number;
  perClass: { classId: number; precision: number; recall: number; f1: number; support: number }[];
  count: number;
}

export function classificationMetrics(truth: readonly number[], predicted: readonly number[], classes?: readonly number[]): ClassificationMetrics {
  const ids = classes ? [...classes] : [...new Set([...truth, ...predicted])].sort((a, b) => a - b);
  const at = new Map(ids.map((c, i) => [c, i]));
  const confusion = ids.map(() => ids.map(() => 0));
  let correct = 0;
  for (let i = 0; i < truth.length; i++) {
    const t = at.get(truth[i]);
    const p = at.get(predicted[i]);
    if (t === undefined || p === undefined) throw new Error(`class ${truth[i]} or ${predicted[i]} is not among ${ids.join(', ')}`);
    confusion[t][p]++;
    if (t === p) correct++;
  }
  const perClass = ids.map((classId, c) => {
    const tp = confusion[c][c];
    const support = confusion[c].reduce((a, b) => a + b, 0);
    const predictedCount = confusion.reduce((a, row) => a + row[c], 0);
    const precision = predictedCount ? tp / predictedCount : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { classId, precision, recall, f1, support };
  });
  const present = perClass.filter((p) => p.support > 0);
  return {
    classes: ids,
    confusion,
    accuracy: truth.length ? correct / truth.length : 0,
    macroF1: present.length ? present.reduce((a, p) => a + p.f1, 0) / present.length : 0,
    perClass,
    count: truth.length,
  };
}
