/** One class of a label set: the integer stored in `labels.class_id`, and its name. */
export interface LabelClass {
  id: number;
  name: string;
}
