/** One class of a label set: the integer stored in `labels.class_id`, and its name. */
export interface LabelClass {
  id: number;
  name: string;
}

/** One tile's label in a label set. */
export interface TileLabel {
  tileId: number;
  classId: number;
  purity: number;
}
