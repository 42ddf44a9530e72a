/** Plain-text and Markdown tables; numbers right-aligned, text left-aligned. */
export type Cell = string | number | null | undefined;

export function formatCell(value: Cell, digits = 2): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return String(value);
    return Number.isInteger(value) ? value.toLocaleString('en-US') : value.toFixed(digits);
  }
  return value;
}

function isNumeric(value: Cell): boolean {
  return typeof value === 'number';
}

export function textTable(header: string[], rows: Cell[][], digits = 2): string {
  const cells = rows.map((row) => row.map((v) => formatCell(v, digits)));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const right = header.map((_, i) => rows.some((r) => isNumeric(r[i])));
  const line = (values: string[]) =>
    values
      .map((v, i) => (right[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

export function markdownTable(header: string[], rows: Cell[][], digits = 2): string {
  const right = header.map((_, i) => rows.some((r) => isNumeric(r[i])));
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `| ${right.map((r) => (r ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((row) => `| ${row.map((v) => esc(formatCell(v, digits))).join(' | ')} |`),
  ].join('\n');
}
