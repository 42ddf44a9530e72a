/** Small helpers shared by the report sections. */
import type { Group } from '../aggregate.js';

/** The row label with the cell's axis values, e.g. "sener (w=32)". */
export function rowLabel(g: Pick<Group, 'label' | 'axes'>): string {
  const axes = Object.entries(g.axes);
  return axes.length === 0 ? g.label : `${g.label} (${axes.map(([k, v]) => `${k}=${String(v)}`).join(', ')})`;
}

/** Row labels in first-appearance order. */
export function distinctLabels(groups: readonly Group[]): string[] {
  return [...new Set(groups.map(rowLabel))];
}

/** A chart file name from free text. */
export function safeFile(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '');
}

/** Mebibytes with one decimal, or an en dash. */
export function mibText(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? '–' : (bytes / 2 ** 20).toFixed(1);
}
