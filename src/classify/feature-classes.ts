import type { Feature } from 'geojson';
import { UserError } from '../errors.ts';
import type { LabelClass } from './labels-types.ts';

/**
 * How features map to classes: integer values of the class field are class ids (named by `names`, keyed by id,
 * else by the value); text values are names, numbered 1..n in sorted order unless `names` gives their ids.
 */
export function featureClasses(features: Feature[], field: string, names: Record<string, string> = {}): { classes: LabelClass[]; classOf: (f: Feature) => number | null } {
  const values = features.map((f) => f.properties?.[field]);
  if (values.every((v) => v === undefined || v === null)) {
    const fields = [...new Set(features.flatMap((f) => Object.keys(f.properties ?? {})))];
    throw new UserError(`the labels have no class field '${field}'; their fields are: ${fields.join(', ') || '(none)'}`);
  }
  if (values.every((v) => v === undefined || v === null || Number.isInteger(v))) {
    const ids = [...new Set(values.filter((v): v is number => Number.isInteger(v)))].sort((a, b) => a - b);
    return {
      classes: ids.map((id) => ({ id, name: names[String(id)] ?? String(id) })),
      classOf: (f) => (Number.isInteger(f.properties?.[field]) ? (f.properties![field] as number) : null),
    };
  }
  const idByName = new Map(Object.entries(names).map(([id, name]) => [name, Number(id)]));
  const textValues = [...new Set(values.filter((v) => v !== undefined && v !== null).map(String))].sort();
  let next = Math.max(0, ...idByName.values()) + 1;
  for (const name of textValues) if (!idByName.has(name)) idByName.set(name, next++);
  return {
    classes: textValues.map((name) => ({ id: idByName.get(name)!, name })).sort((a, b) => a.id - b.id),
    classOf: (f) => {
      const v = f.properties?.[field];
      return v === undefined || v === null ? null : idByName.get(String(v))!;
    },
  };
}
