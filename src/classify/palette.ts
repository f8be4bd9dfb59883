/** Distinct colours for up to 20 classes (Tableau 20 order), then repeating. */
const TABLEAU20: [number, number, number][] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75], [227, 119, 194],
  [127, 127, 127], [188, 189, 34], [23, 190, 207], [174, 199, 232], [255, 187, 120], [152, 223, 138], [255, 152, 150],
  [197, 176, 213], [196, 156, 148], [247, 182, 210], [199, 199, 199], [219, 219, 141], [158, 218, 229],
];

export function classColor(index: number): [number, number, number] {
  return TABLEAU20[index % TABLEAU20.length];
}
