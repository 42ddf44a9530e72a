/** Sizes as people write them: `16GiB`, `16G`, `500MB`, `1.5e9` (bytes). Binary and decimal units both mean powers of 1024, as RAM is sold. */
const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 2 ** 10,
  kb: 2 ** 10,
  kib: 2 ** 10,
  m: 2 ** 20,
  mb: 2 ** 20,
  mib: 2 ** 20,
  g: 2 ** 30,
  gb: 2 ** 30,
  gib: 2 ** 30,
  t: 2 ** 40,
  tb: 2 ** 40,
  tib: 2 ** 40,
};

/** Bytes of a size string, or null when it is not one. */
export function parseByteSize(text: string): number | null {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (m === null) return null;
  const unit = UNITS[m[2]!.toLowerCase()];
  const value = Number(m[1]);
  if (unit === undefined || !Number.isFinite(value) || value <= 0) return null;
  return Math.round(value * unit);
}

/** Byte counts as axis labels: 512 MiB, 2 GiB, ... */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const digits = v >= 100 || Number.isInteger(v) ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${units[u]}`;
}
