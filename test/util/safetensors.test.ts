import test, { type ExecutionContext } from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LongnerError } from '../../src/errors.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  float16ToFloat32,
  float32ToFloat16,
  fromHalfBits,
  readSafetensors,
  toHalfBits,
  writeSafetensors,
} from '../../src/util/safetensors.js';
import { createRng } from '../../src/util/rng.js';
import { tempDirs } from '../temp-dirs.js';

const temp = tempDirs();

// ---------------------------------------------------------------------------------------------
// A reference float16, written from the definition rather than from bits: the value of every half,
// and rounding as "the nearest of those values, ties to the even bit pattern", with 65536 standing in
// for infinity (IEEE 754 rounds as if the exponent range went on, so 65520 is the tie 65504 | inf).

function referenceValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 31) return m === 0 ? sign * Infinity : Number.NaN;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Non-negative halves by bits 0..0x7c00 (bit order is value order), the last one the stand-in for infinity. */
const ladder = Array.from({ length: 0x7c01 }, (_, h) => (h === 0x7c00 ? 65536 : referenceValue(h)));

function referenceHalf(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  if (x < 0 || Object.is(x, -0)) return 0x8000 | referenceHalf(-x);
  if (x >= 65536) return 0x7c00;
  let lo = 0;
  let hi = ladder.length - 1;
  // The largest h with ladder[h] <= x.
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ladder[mid]! <= x) lo = mid;
    else hi = mid - 1;
  }
  if (ladder[lo] === x) return lo;
  const below = x - ladder[lo]!;
  const above = ladder[lo + 1]! - x;
  if (below < above) return lo;
  if (above < below) return lo + 1;
  return lo % 2 === 0 ? lo : lo + 1;
}

const bitsOf = (x: number): number => new Uint32Array(Float32Array.of(x).buffer)[0]!;
const fromBits = (b: number): number => new Float32Array(Uint32Array.of(b).buffer)[0]!;

function sameHalf(t: ExecutionContext, got: number, want: number, x: number): void {
  const what = `x = ${x} (bits 0x${bitsOf(x).toString(16)})`;
  if ((want & 0x7c00) === 0x7c00 && (want & 0x3ff) !== 0)
    t.true((got & 0x7c00) === 0x7c00 && (got & 0x3ff) !== 0, `${what}: NaN expected, got 0x${got.toString(16)}`);
  else t.is(got, want, what);
}

test('every half decodes to its value, and encodes back to itself', (t) => {
  let nans = 0;
  for (let h = 0; h < 0x10000; h++) {
    const v = fromHalfBits(h);
    const want = referenceValue(h);
    if (Number.isNaN(want)) {
      nans++;
      t.true(Number.isNaN(v));
      // The payload survives (quiet or not), so a NaN stays a NaN of the same sign.
      t.is(toHalfBits(v) & 0x8000, h & 0x8000);
      continue;
    }
    if (!Object.is(v, want)) t.fail(`half 0x${h.toString(16)}: ${v} instead of ${want}`);
    if (toHalfBits(v) !== h) t.fail(`half 0x${h.toString(16)} encodes back to 0x${toHalfBits(v).toString(16)}`);
  }
  t.is(nans, 2 * 1023);
});

test('float32 to half rounds to nearest even, like the reference, at every tie and beside it', (t) => {
  let checked = 0;
  for (let h = 0; h < 0x7c00; h++) {
    const mid = (ladder[h]! + ladder[h + 1]!) / 2;
    t.is(Math.fround(mid), mid, 'midpoints are float32 numbers');
    for (const x of [mid, fromBits(bitsOf(mid) - 1), fromBits(bitsOf(mid) + 1)]) {
      for (const s of [x, -x]) {
        const got = toHalfBits(s);
        const want = referenceHalf(s);
        if (got !== want) t.fail(`x = ${s}: 0x${got.toString(16)} instead of 0x${want.toString(16)}`);
        checked++;
      }
    }
  }
  t.true(checked > 180_000);
});

test('float32 to half agrees with the reference on random float32 numbers and the edge cases', (t) => {
  const rng = createRng(99);
  const xs: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    // Exponents around the half range (subnormal halves to overflow), random sign and mantissa.
    const exponent = 95 + Math.floor(rng.next() * 50);
    const bits = ((rng.next() < 0.5 ? 0x80000000 : 0) | (exponent << 23) | Math.floor(rng.next() * 0x800000)) >>> 0;
    xs.push(fromBits(bits));
  }
  const edges = [
    0,
    -0,
    2 ** -25, // the tie between 0 and the smallest subnormal: 0 (even)
    fromBits(bitsOf(2 ** -25) + 1), // just above it: the smallest subnormal
    fromBits(bitsOf(2 ** -25) - 1),
    3 * 2 ** -25, // the tie between subnormals 1 and 2: 2
    2 ** -24,
    2 ** -14 - 2 ** -25, // the tie between the largest subnormal and the smallest normal: the normal (0x400 is even)
    2 ** -14,
    1 + 2 ** -11, // ties at 1: to 1
    1 + 3 * 2 ** -11, // between 1 + 2^-10 (odd) and 1 + 2^-9 (even): 1 + 2^-9
    2048 + 1, // integers lose their last bit above 2048
    2048 + 3,
    65504,
    65519.99609375, // below the tie: 65504
    65520, // the tie with infinity: infinity
    65536,
    1e10,
    3.4028234663852886e38,
    fromBits(1), // the smallest float32 subnormal: 0
    Infinity,
    -Infinity,
    Number.NaN,
    fromBits(0x7f800001), // a signalling NaN whose payload is only in the dropped bits
    fromBits(0xffc00000),
  ];
  for (const x of [...edges, ...xs]) sameHalf(t, toHalfBits(x), referenceHalf(x), x);
  t.is(toHalfBits(2 ** -25), 0);
  t.is(toHalfBits(fromBits(bitsOf(2 ** -25) + 1)), 1);
  t.is(toHalfBits(65519.99609375), 0x7bff);
  t.is(toHalfBits(65520), 0x7c00);
  t.is(toHalfBits(-0), 0x8000);

  // The bulk conversions are the scalar ones.
  const values = Float32Array.from([...edges, ...xs]);
  const halves = float32ToFloat16(values);
  t.deepEqual([...halves], [...values].map(toHalfBits));
  t.deepEqual(
    [...float16ToFloat32(halves)].map((v) => (Number.isNaN(v) ? 'NaN' : v)),
    [...halves].map((h) => (Number.isNaN(fromHalfBits(h)) ? 'NaN' : fromHalfBits(h))),
  );
});

// ---------------------------------------------------------------------------------------------
// Files

const dir = temp('safetensors');

function randomValues(n: number, seed: number, scale = 1): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * scale);
}

test('a written file has the documented layout and reads back exactly (F32) or as its halves (F16)', (t) => {
  const special = Float32Array.from([0, -0, Infinity, -Infinity, Number.NaN, fromBits(1), 3.4028234663852886e38, 1e-8, 65520, -1 / 3]);
  const tensors = [
    { name: 'encoder.tok_embed', dtype: 'F16' as const, shape: [7, 3], values: randomValues(21, 1, 4) },
    { name: 'encoder.l0.q.W', dtype: 'F32' as const, shape: [3, 3], values: randomValues(9, 2) },
    { name: 'odd', dtype: 'F16' as const, shape: [5], values: randomValues(5, 3, 1e-5) },
    { name: 'special', dtype: 'F32' as const, shape: [2, 5], values: special },
    { name: 'special16', dtype: 'F16' as const, shape: [10], values: special },
    { name: 'scalar', dtype: 'F32' as const, shape: [], values: Float32Array.of(2.5) },
    { name: 'empty', dtype: 'F32' as const, shape: [0, 4], values: new Float32Array(0) },
  ];
  const path = join(dir, 'layout.safetensors');
  writeSafetensors(path, tensors, { format: 'test', note: 'é ✓' });
  const bytes = readFileSync(path);

  const n = Number(bytes.readBigUInt64LE(0));
  t.is(n % 8, 0, 'the header is padded to a multiple of 8');
  const headerText = bytes.toString('utf8', 8, 8 + n);
  t.regex(headerText, /^\{.*\} *$/s);
  const header = JSON.parse(headerText) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  t.deepEqual(header.__metadata__ as unknown, { format: 'test', note: 'é ✓' });
  t.deepEqual(header['encoder.l0.q.W'], { dtype: 'F32', shape: [3, 3], data_offsets: [0, 36] }, 'float32 tensors come first, in input order');
  t.deepEqual(header['encoder.tok_embed']!.data_offsets, [36 + 40 + 4, 36 + 40 + 4 + 42]);
  t.is(bytes.length, 8 + n + 36 + 40 + 4 + 0 + 42 + 10 + 20);
  // The raw data, read independently of the reader: little-endian float32 and half bits.
  t.is(bytes.readFloatLE(8 + n + 4), tensors[1]!.values[1]!);
  t.is(bytes.readUInt16LE(8 + n + 80 + 2), toHalfBits(tensors[0]!.values[1]!));

  const back = readSafetensors(path);
  t.deepEqual(back.metadata, { format: 'test', note: 'é ✓' });
  t.deepEqual([...back.tensors.keys()], ['encoder.l0.q.W', 'special', 'scalar', 'empty', 'encoder.tok_embed', 'odd', 'special16']);
  for (const w of tensors) {
    const r = back.tensors.get(w.name)!;
    t.is(r.dtype, w.dtype);
    t.deepEqual(r.shape, w.shape);
    const want = w.dtype === 'F32' ? w.values : Float32Array.from(w.values, (x) => fromHalfBits(toHalfBits(x)));
    // Bit for bit (NaN included) for F32; the nearest half's value for F16.
    t.deepEqual(
      [...new Uint32Array(r.values.buffer, r.values.byteOffset, r.values.length)],
      [...new Uint32Array(want.buffer, want.byteOffset, want.length)],
      w.name,
    );
  }
  const odd = back.tensors.get('odd')!.values;
  for (const [i, x] of tensors[2]!.values.entries()) t.true(Math.abs(odd[i]! - x) <= 2 ** -25, 'subnormal halves keep small values to within half an ulp');
});

test('a hand-made file from the format description is read', (t) => {
  const json = '{"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},"a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}';
  const header = Buffer.from(json.padEnd(Math.ceil(json.length / 8) * 8, ' '));
  const data = Buffer.alloc(12);
  data.writeFloatLE(1.5, 0);
  data.writeFloatLE(-2, 4);
  data.writeUInt16LE(0x3c00, 8); // 1
  data.writeUInt16LE(0x0001, 10); // 2^-24
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  const content = decodeSafetensors(Buffer.concat([length, header, data]), 'hand.safetensors');
  t.deepEqual(content.metadata, { format: 'pt' });
  t.deepEqual([...content.tensors.get('a')!.values], [1.5, -2]);
  t.deepEqual(content.tensors.get('a')!.shape, [1, 2]);
  t.deepEqual([...content.tensors.get('b')!.values], [1, 2 ** -24]);
});

/** A file with a header given as text and `dataBytes` zero bytes of data. */
function fileWith(header: unknown, dataBytes: number, declared?: number): Uint8Array {
  const json = header instanceof Uint8Array ? Buffer.from(header) : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(declared ?? json.length));
  return Buffer.concat([length, json, Buffer.alloc(dataBytes)]);
}

test('malformed files are LongnerErrors that say what is wrong', (t) => {
  const f32 = (shape: number[], offsets: [number, number]) => ({ dtype: 'F32', shape, data_offsets: offsets });
  const whole = encodeSafetensors([{ name: 'a', dtype: 'F32', shape: [4], values: new Float32Array(4) }]);
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['empty', new Uint8Array(0), /0 bytes long, shorter than the 8-byte header length/],
    ['seven bytes', new Uint8Array(7), /7 bytes long/],
    ['header past the end', fileWith({ a: f32([1], [0, 4]) }, 4, 1000), /header length is 1000 bytes but only \d+ follow/],
    ['huge header length', fileWith('{}', 0, 2 ** 62), /header length is \d+ bytes but only 2 follow/],
    ['truncated data', whole.subarray(0, whole.length - 6), /data_offsets \[0, 16\] outside the data section of 10 bytes/],
    ['not JSON', fileWith('{"a": ', 0), /header is not UTF-8 JSON/],
    ['not UTF-8', fileWith(Uint8Array.of(0x7b, 0xff, 0x7d), 0), /header is not UTF-8 JSON/],
    ['an array', fileWith([1, 2], 0), /header is not a JSON object/],
    [
      'unsupported dtype',
      fileWith({ a: { dtype: 'BF16', shape: [2], data_offsets: [0, 4] } }, 4),
      /tensor "a" has unsupported dtype BF16 \(supported: F32, F16\)/,
    ],
    ['unknown dtype', fileWith({ a: { dtype: 'float32', shape: [1], data_offsets: [0, 4] } }, 4), /unknown dtype float32/],
    ['no dtype', fileWith({ a: { shape: [1], data_offsets: [0, 4] } }, 4), /tensor "a" has no dtype/],
    ['negative dim', fileWith({ a: f32([-1], [0, 4]) }, 4), /shape \[-1\], expected a list of non-negative integers/],
    ['fractional dim', fileWith({ a: f32([1.5], [0, 4]) }, 4), /expected a list of non-negative integers/],
    ['bad offsets', fileWith({ a: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 4), /data_offsets \[0\], expected \[begin, end\]/],
    ['reversed offsets', fileWith({ a: f32([0], [4, 0]) }, 4), /data_offsets \[4, 0\] outside the data section/],
    ['offsets past the data', fileWith({ a: f32([2], [0, 8]) }, 4), /data_offsets \[0, 8\] outside the data section of 4 bytes/],
    ['shape and bytes disagree', fileWith({ a: f32([3], [0, 8]) }, 8), /shape \[3\] of F32, which is 12 bytes, but its data_offsets span 8/],
    ['overlap', fileWith({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) }, 12), /tensor "b" \[4, 12\) overlaps tensor "a"/],
    ['gap', fileWith({ a: f32([1], [0, 4]), b: f32([1], [8, 12]) }, 12), /bytes 4\.\.8 of the data section belong to no tensor/],
    ['trailing bytes', fileWith({ a: f32([1], [0, 4]) }, 8), /bytes 4\.\.8 of the data section belong to no tensor/],
    ['metadata not strings', fileWith({ __metadata__: { steps: 3 } }, 0), /__metadata__\.steps is not a string/],
    ['entry not an object', fileWith({ a: 3 }, 0), /tensor "a" is not an object/],
  ];
  for (const [what, bytes, message] of cases) {
    const err = t.throws(() => decodeSafetensors(bytes, 'bad.safetensors'), { instanceOf: LongnerError }, what);
    t.regex(err?.message ?? '', /^bad\.safetensors is not a valid safetensors file: /, what);
    t.regex(err?.message ?? '', message, what);
  }
  const missing = join(dir, 'missing.safetensors');
  t.throws(() => readSafetensors(missing), { instanceOf: LongnerError, message: /missing\.safetensors: cannot read/ });
  const truncated = join(dir, 'truncated.safetensors');
  writeFileSync(truncated, Buffer.from([1, 2, 3]));
  t.throws(() => readSafetensors(truncated), {
    instanceOf: LongnerError,
    message: /truncated\.safetensors is not a valid safetensors file: it is 3 bytes long/,
  });
});

test('the writer refuses what the format cannot hold (a caller bug, not a user error)', (t) => {
  t.throws(() => encodeSafetensors([{ name: '__metadata__', dtype: 'F32', shape: [1], values: new Float32Array(1) }]), { message: /reserved or repeated/ });
  t.throws(
    () =>
      encodeSafetensors([
        { name: 'a', dtype: 'F32', shape: [1], values: new Float32Array(1) },
        { name: 'a', dtype: 'F16', shape: [1], values: new Float32Array(1) },
      ]),
    { message: /reserved or repeated/ },
  );
  t.throws(() => encodeSafetensors([{ name: 'a', dtype: 'F32', shape: [2, 2], values: new Float32Array(3) }]), { message: /shape \[2,2\] but 3 values/ });
});
