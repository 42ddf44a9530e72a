/**
 * A small reader and writer of the safetensors format (huggingface/safetensors), for the F32 and F16
 * tensors the framework's encoders are made of. No dependency: the format is simple enough, and the
 * reader is the boundary where a file from elsewhere comes in, so every field is checked here.
 *
 * Layout:
 *   8 bytes   uint64 little-endian N, the byte length of the header
 *   N bytes   UTF-8 JSON { "<name>": { dtype, shape, data_offsets: [begin, end] }, ..., "__metadata__": { string: string } },
 *             padded with spaces so that the data section starts at a multiple of 8
 *   data      the tensors' raw little-endian values, row-major; offsets count from the start of the data section
 *
 * Like the reference implementation, the reader wants the tensors to tile the data section exactly (no
 * overlap, no gap, nothing after the last one), so a file it accepts is one the reference accepts.
 * F16 values are read back as the float32 numbers they stand for (exactly: every half is a float32);
 * they are written from float32 with round-to-nearest, ties to even, as IEEE 754 converts.
 */
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { LongnerError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';

export const SAFETENSORS_DTYPES = ['F32', 'F16'] as const;
export type SafetensorsDtype = (typeof SAFETENSORS_DTYPES)[number];

const ITEM_BYTES: Readonly<Record<SafetensorsDtype, number>> = { F32: 4, F16: 2 };
/** The dtypes of the format that this reader does not convert, so a file that holds one gets a precise message. */
const OTHER_DTYPES = ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'BF16', 'I32', 'U32', 'F64', 'I64', 'U64'];
const METADATA_KEY = '__metadata__';
/** The reference implementation refuses larger headers; so does this one, before allocating anything for it. */
const MAX_HEADER_BYTES = 100_000_000;

export interface TensorData {
  shape: number[];
  /** Row-major values; an F16 tensor holds the float32 value of each half. */
  values: Float32Array;
}

export interface TensorToWrite extends TensorData {
  name: string;
  dtype: SafetensorsDtype;
}

export interface StoredTensor extends TensorData {
  dtype: SafetensorsDtype;
}

export interface SafetensorsContent {
  /** In the order of their data in the file. */
  tensors: Map<string, StoredTensor>;
  metadata: Record<string, string>;
}

const littleEndian = endianness() === 'LE';

// ---------------------------------------------------------------------------------------------
// float32 <-> float16

const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

/** The IEEE binary16 bits nearest to float32 `bits` (round to nearest, ties to even; beyond the range, infinity). */
function halfFromFloatBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) {
    if (mantissa === 0) return sign | 0x7c00;
    // Keep the payload's top bits; a payload that lived only in the dropped bits must still be a NaN.
    const payload = mantissa >>> 13;
    return sign | 0x7c00 | (payload === 0 ? 0x200 : payload);
  }
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Below 2^-25 everything rounds to zero (2^-25 itself is the tie between 0 and 2^-24, and 0 is even).
    if (e < -10) return sign;
    // Half subnormal m_h * 2^-24 from the 24-bit significand: drop 14 - e bits, rounding. A carry out
    // of the subnormal range gives 0x400, the smallest normal half, which is the right answer.
    const significand = mantissa | 0x800000;
    const shift = 14 - e;
    let half = significand >>> shift;
    const rest = significand & ((1 << shift) - 1);
    const tie = 1 << (shift - 1);
    if (rest > tie || (rest === tie && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry runs into the exponent, which is right, up to 0x7c00: the largest half rounds up to infinity.
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/** float32 bits of the half `h`; exact, since every half is a float32. */
function floatBitsFromHalf(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent - 15 + 127) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // Subnormal half: normalise, so the leading one becomes the implicit bit of a normal float32.
  let m = mantissa;
  let e = -14;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | ((e + 127) << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** The binary16 bits of the half nearest to `x` taken as a float32 (round to nearest even). */
export function toHalfBits(x: number): number {
  f32[0] = x;
  return halfFromFloatBits(f32Bits[0]!);
}

/** The value of binary16 bits `h`. */
export function fromHalfBits(h: number): number {
  f32Bits[0] = floatBitsFromHalf(h & 0xffff);
  return f32[0]!;
}

/** Each value rounded to its nearest half; works on the bits, so a NaN's payload is not lost to a JS number. */
export function float32ToFloat16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfFromFloatBits(bits[i]!);
  return out;
}

export function float16ToFloat32(halves: Uint16Array): Float32Array {
  const out = new Float32Array(halves.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < halves.length; i++) bits[i] = floatBitsFromHalf(halves[i]!);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The bytes of a safetensors file holding `tensors` (names must be distinct) and string `metadata`. */
export function encodeSafetensors(tensors: readonly TensorToWrite[], metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  // Widest items first, as the reference writer does, so every tensor starts aligned to its item size.
  const ordered = tensors.map((t, i) => ({ t, i })).sort((a, b) => ITEM_BYTES[b.t.dtype] - ITEM_BYTES[a.t.dtype] || a.i - b.i);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[METADATA_KEY] = { ...metadata };
  let offset = 0;
  for (const { t } of ordered) {
    if (t.name === METADATA_KEY || Object.hasOwn(header, t.name)) throw new Error(`safetensors: tensor name ${t.name} is reserved or repeated`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`safetensors: ${t.name} has shape [${t.shape}]`);
    if (elementCount(t.shape) !== t.values.length) throw new Error(`safetensors: ${t.name} has shape [${t.shape}] but ${t.values.length} values`);
    const bytes = t.values.length * ITEM_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const headerBytes = Math.ceil(json.length / 8) * 8;
  const file = Buffer.alloc(8 + headerBytes + offset, 0x20);
  file.writeBigUInt64LE(BigInt(headerBytes), 0);
  json.copy(file, 8);
  const dataStart = 8 + headerBytes;
  for (const { t } of ordered) {
    const [begin] = (header[t.name] as { data_offsets: [number, number] }).data_offsets;
    if (t.dtype === 'F32') writeFloat32(file, dataStart + begin, t.values);
    else writeUint16(file, dataStart + begin, float32ToFloat16(t.values));
  }
  return file;
}

/** Writes the file atomically (util/atomic.ts). */
export function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata: Readonly<Record<string, string>> = {}): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

function writeFloat32(buf: Buffer, at: number, values: Float32Array): void {
  if (littleEndian) buf.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), at);
  else for (let i = 0; i < values.length; i++) buf.writeFloatLE(values[i]!, at + 4 * i);
}

function writeUint16(buf: Buffer, at: number, values: Uint16Array): void {
  if (littleEndian) buf.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), at);
  else for (let i = 0; i < values.length; i++) buf.writeUInt16LE(values[i]!, at + 2 * i);
}

// ---------------------------------------------------------------------------------------------
// Reading

interface Entry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/**
 * Parses and checks a whole file's bytes; `source` names it in messages. Every problem is a
 * LongnerError saying what is wrong where, and nothing is read outside the buffer.
 */
export function decodeSafetensors(bytes: Uint8Array, source: string): SafetensorsContent {
  const bad = (why: string): LongnerError => new LongnerError(`${source} is not a valid safetensors file: ${why}`);
  if (bytes.length < 8) throw bad(`it is ${bytes.length} bytes long, shorter than the 8-byte header length (truncated?)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(bytes.length - 8)) {
    throw bad(`the header length is ${declared} bytes but only ${bytes.length - 8} follow the first 8 (truncated?)`);
  }
  const headerBytes = Number(declared);
  if (headerBytes > MAX_HEADER_BYTES) throw bad(`the header length ${headerBytes} exceeds ${MAX_HEADER_BYTES} bytes`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerBytes)));
  } catch (err) {
    throw bad(`the header is not UTF-8 JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!isRecord(header)) throw bad('the header is not a JSON object');
  const dataStart = 8 + headerBytes;
  const dataBytes = bytes.length - dataStart;

  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (!isRecord(value)) throw bad(`${METADATA_KEY} is not an object`);
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw bad(`${METADATA_KEY}.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const at = `tensor ${JSON.stringify(name)}`;
    if (!isRecord(value)) throw bad(`${at} is not an object`);
    const { dtype, shape, data_offsets: offsets } = value;
    if (typeof dtype !== 'string') throw bad(`${at} has no dtype`);
    if (!(SAFETENSORS_DTYPES as readonly string[]).includes(dtype)) {
      const what = OTHER_DTYPES.includes(dtype) ? 'unsupported' : 'unknown';
      throw bad(`${at} has ${what} dtype ${dtype} (supported: ${SAFETENSORS_DTYPES.join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) throw bad(`${at} has shape ${JSON.stringify(shape)}, expected a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      throw bad(`${at} has data_offsets ${JSON.stringify(offsets)}, expected [begin, end] in bytes`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataBytes) throw bad(`${at} has data_offsets [${begin}, ${end}] outside the data section of ${dataBytes} bytes`);
    const d = dtype as SafetensorsDtype;
    const count = elementCount(shape);
    const need = count * ITEM_BYTES[d];
    if (!Number.isSafeInteger(count) || need !== end - begin) {
      throw bad(`${at} has shape [${shape}] of ${d}, which is ${need} bytes, but its data_offsets span ${end - begin}`);
    }
    entries.push({ name, dtype: d, shape, begin, end });
  }

  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: Entry | null = null;
  for (const e of entries) {
    if (e.begin < covered)
      throw bad(`tensor ${JSON.stringify(e.name)} [${e.begin}, ${e.end}) overlaps tensor ${JSON.stringify(previous?.name)} (ends at ${covered})`);
    if (e.begin > covered) throw bad(`bytes ${covered}..${e.begin} of the data section belong to no tensor`);
    covered = e.end;
    previous = e;
  }
  if (covered !== dataBytes) throw bad(`bytes ${covered}..${dataBytes} of the data section belong to no tensor`);

  const tensors = new Map<string, StoredTensor>();
  for (const e of entries) {
    const at = dataStart + e.begin;
    // A copy (a Buffer's slice would be a view), so the values do not keep the whole file alive and
    // are aligned for the typed-array views below whatever their offset in the file.
    const raw = new Uint8Array(bytes.subarray(at, dataStart + e.end));
    const values = e.dtype === 'F32' ? readFloat32(raw) : float16ToFloat32(readUint16(raw));
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, values });
  }
  return { tensors, metadata };
}

export function readSafetensors(path: string): SafetensorsContent {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new LongnerError(`${path}: cannot read (${err instanceof Error ? err.message : String(err)})`);
  }
  return decodeSafetensors(bytes, path);
}

function readFloat32(raw: Uint8Array): Float32Array {
  if (littleEndian) return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Float32Array.from({ length: raw.byteLength / 4 }, (_, i) => view.getFloat32(4 * i, true));
}

function readUint16(raw: Uint8Array): Uint16Array {
  if (littleEndian) return new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Uint16Array.from({ length: raw.byteLength / 2 }, (_, i) => view.getUint16(2 * i, true));
}
