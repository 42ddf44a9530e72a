/**
 * Named model parameters: creation with seeded initialisers, freezing, counting, and checkpoints.
 *
 * Every parameter gets its own random stream, seeded from (store seed, parameter name), so a weight
 * does not change when another parameter is added or created in a different order, and the values
 * come from JS (src/util/rng.ts), not from a backend's RNG: the same seed gives the same weights on
 * cpu, wasm and tensorflow.
 *
 * Checkpoint file layout (all little-endian):
 *   8 bytes  magic "LNPARAM1"
 *   4 bytes  uint32 byte length H of the JSON header
 *   H bytes  UTF-8 JSON { format, tensors: [{ name, shape, dtype: 'float32', offset, bytes }] }
 *   padding  zero bytes up to a multiple of 4
 *   data     raw float32 values; `offset` counts from the start of the data section
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { LongnerError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { createRng, type Rng } from '../util/rng.js';

export type Init = { kind: 'xavier' } | { kind: 'normal'; std: number } | { kind: 'uniform'; limit: number } | { kind: 'zeros' } | { kind: 'ones' };

export type NameFilter = string | ((name: string) => boolean);

interface HeaderEntry {
  name: string;
  shape: number[];
  dtype: 'float32';
  offset: number;
  bytes: number;
}

const MAGIC = 'LNPARAM1';
const FORMAT = 'longner-params/1';

/** FNV-1a: a stable 32-bit hash of a parameter name, mixed into the store seed. */
function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function standardNormal(rng: Rng): number {
  // Box-Muller; 1 - next() keeps the logarithm's argument in (0, 1].
  const u = 1 - rng.next();
  const v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Fills a fresh array for `shape`; xavier treats the first axis as fan-in and the last as fan-out. */
export function initValues(shape: readonly number[], init: Init, rng: Rng): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  switch (init.kind) {
    case 'zeros':
      return out;
    case 'ones':
      return out.fill(1);
    case 'normal':
      for (let i = 0; i < size; i++) out[i] = init.std * standardNormal(rng);
      return out;
    case 'uniform':
    case 'xavier': {
      const fanIn = shape[0] ?? 1;
      const fanOut = shape[shape.length - 1] ?? 1;
      const limit = init.kind === 'uniform' ? init.limit : Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < size; i++) out[i] = (2 * rng.next() - 1) * limit;
      return out;
    }
  }
}

function matches(filter: NameFilter | undefined, name: string): boolean {
  if (filter === undefined) return true;
  return typeof filter === 'string' ? name.startsWith(filter) : filter(name);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function listSome(items: string[], max = 8): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

export class ParamStore {
  private readonly vars = new Map<string, tf.Variable>();
  private readonly byTfName = new Map<string, string>();

  constructor(readonly seed: number) {}

  /**
   * Returns the parameter `name`, creating it with `init` if it does not exist yet. Asking again with
   * another shape is a bug in the caller, so that throws.
   */
  param(name: string, shape: readonly number[], init: Init): tf.Variable {
    const existing = this.vars.get(name);
    if (existing !== undefined) {
      if (!sameShape(existing.shape, shape)) {
        throw new Error(`parameter ${name} exists with shape [${existing.shape}], asked for [${shape}]`);
      }
      return existing;
    }
    const rng = createRng((this.seed ^ nameHash(name)) >>> 0);
    // tfjs variable names are global to the engine; leaving them automatic lets several stores coexist.
    const initial = tf.tensor(initValues(shape, init, rng), [...shape], 'float32');
    const variable = tf.variable(initial, true);
    initial.dispose();
    this.vars.set(name, variable);
    this.byTfName.set(variable.name, name);
    return variable;
  }

  has(name: string): boolean {
    return this.vars.has(name);
  }

  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (v === undefined) throw new Error(`no parameter named ${name}`);
    return v;
  }

  names(filter?: NameFilter): string[] {
    return [...this.vars.keys()].filter((n) => matches(filter, n));
  }

  /** Our name of a tfjs variable (tf.variableGrads keys its result by the tfjs name). */
  nameOf(variable: tf.Variable): string {
    const name = this.byTfName.get(variable.name);
    if (name === undefined) throw new Error(`variable ${variable.name} is not in this store`);
    return name;
  }

  /** The unfrozen variables (optionally only those matching `filter`), ready for variableGrads. */
  trainable(filter?: NameFilter): tf.Variable[] {
    return this.names(filter)
      .map((n) => this.get(n))
      .filter((v) => v.trainable);
  }

  freeze(prefix: string): void {
    for (const n of this.names(prefix)) this.get(n).trainable = false;
  }

  unfreeze(prefix: string): void {
    for (const n of this.names(prefix)) this.get(n).trainable = true;
  }

  /** Number of scalar weights, all of them or only the unfrozen ones. */
  count(opts: { trainableOnly?: boolean; filter?: NameFilter } = {}): number {
    let total = 0;
    for (const n of this.names(opts.filter)) {
      const v = this.get(n);
      if (!opts.trainableOnly || v.trainable) total += v.size;
    }
    return total;
  }

  save(path: string, filter?: NameFilter): void {
    const names = this.names(filter);
    const tensors: HeaderEntry[] = [];
    let offset = 0;
    for (const name of names) {
      const v = this.get(name);
      tensors.push({ name, shape: [...v.shape], dtype: 'float32', offset, bytes: v.size * 4 });
      offset += v.size * 4;
    }
    const header = Buffer.from(JSON.stringify({ format: FORMAT, tensors }), 'utf8');
    const dataStart = Math.ceil((12 + header.length) / 4) * 4;
    const file = Buffer.alloc(dataStart + offset);
    file.write(MAGIC, 0, 'latin1');
    file.writeUInt32LE(header.length, 8);
    header.copy(file, 12);
    for (const [i, name] of names.entries()) {
      const values = this.get(name).dataSync() as Float32Array;
      writeFloat32LE(file, dataStart + tensors[i]!.offset, values);
    }
    writeFileAtomic(path, file);
  }

  /**
   * Overwrites parameters with a checkpoint's values. Only names accepted by `opts.only` are
   * considered, on both sides; among those, the store and the file must hold the same names with the
   * same shapes, or nothing is changed and the error lists every difference.
   * Returns the names that were loaded.
   */
  load(path: string, opts: { only?: NameFilter } = {}): string[] {
    return this.assignAll(readCheckpoint(path), `checkpoint ${path}`, opts);
  }

  /**
   * load() from tensors read elsewhere (a safetensors file): the same matching, the same all-or-nothing
   * rule; `source` names them in the error ("checkpoint x.ckpt").
   */
  assignAll(tensors: ReadonlyMap<string, NamedValues>, source: string, opts: { only?: NameFilter } = {}): string[] {
    const fromFile = new Map([...tensors].filter(([name]) => matches(opts.only, name)));
    const inStore = this.names(opts.only);
    const missing = inStore.filter((n) => !fromFile.has(n));
    const extra = [...fromFile.keys()].filter((n) => !this.vars.has(n));
    const shapes = inStore
      .filter((n) => fromFile.has(n) && !sameShape(fromFile.get(n)!.shape, this.get(n).shape))
      .map((n) => `${n} [${fromFile.get(n)!.shape}] in the file, [${this.get(n).shape}] in the model`);
    const problems: string[] = [];
    if (missing.length > 0) problems.push(`missing from the file: ${listSome(missing)}`);
    if (extra.length > 0) problems.push(`not in the model: ${listSome(extra)}`);
    if (shapes.length > 0) problems.push(`shape differs: ${listSome(shapes, 4)}`);
    if (problems.length > 0) throw new LongnerError(`${source} does not fit the model; ${problems.join('; ')}`);
    for (const name of inStore) {
      const e = fromFile.get(name)!;
      tf.tidy(() => this.get(name).assign(tf.tensor(e.values, e.shape, 'float32')));
    }
    return inStore;
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    this.byTfName.clear();
  }
}

/** Shape and values of one parameter, as a checkpoint holds it. */
export interface NamedValues {
  shape: number[];
  values: Float32Array;
}

/** Every tensor of a checkpoint written by ParamStore.save, in file order, without a backend. */
export function readCheckpoint(path: string): Map<string, NamedValues> {
  const file = readFileSync(path);
  const { entries, dataStart } = parseHeader(file, path);
  return new Map(entries.map((e) => [e.name, { shape: e.shape, values: readFloat32LE(file, dataStart + e.offset, e.bytes / 4) }]));
}

function parseHeader(file: Buffer, path: string): { entries: HeaderEntry[]; dataStart: number } {
  const bad = (why: string): LongnerError => new LongnerError(`${path} is not a longner parameter file (${why})`);
  if (file.length < 12 || file.toString('latin1', 0, 8) !== MAGIC) throw bad('wrong magic bytes');
  const headerLength = file.readUInt32LE(8);
  if (12 + headerLength > file.length) throw bad('header runs past the end of the file');
  let parsed: unknown;
  try {
    parsed = JSON.parse(file.toString('utf8', 12, 12 + headerLength));
  } catch {
    throw bad('header is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || (parsed as { format?: unknown }).format !== FORMAT) {
    throw bad(`format is not ${FORMAT}`);
  }
  const tensors = (parsed as { tensors?: unknown }).tensors;
  if (!Array.isArray(tensors)) throw bad('no tensor list');
  const dataStart = Math.ceil((12 + headerLength) / 4) * 4;
  const entries = tensors.map((t: unknown): HeaderEntry => {
    const e = t as Partial<HeaderEntry>;
    const ok =
      typeof e.name === 'string' &&
      Array.isArray(e.shape) &&
      e.shape.every((d) => Number.isInteger(d) && d >= 0) &&
      e.dtype === 'float32' &&
      Number.isInteger(e.offset) &&
      e.bytes === e.shape.reduce((a, b) => a * b, 1) * 4 &&
      dataStart + (e.offset as number) + e.bytes <= file.length;
    if (!ok) throw bad(`bad entry ${JSON.stringify(t).slice(0, 120)}`);
    return e as HeaderEntry;
  });
  return { entries, dataStart };
}

const littleEndian = endianness() === 'LE';

function writeFloat32LE(buf: Buffer, at: number, values: Float32Array): void {
  if (littleEndian) {
    buf.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), at);
    return;
  }
  for (let i = 0; i < values.length; i++) buf.writeFloatLE(values[i]!, at + 4 * i);
}

function readFloat32LE(buf: Buffer, at: number, count: number): Float32Array {
  const out = new Float32Array(count);
  if (littleEndian) {
    new Uint8Array(out.buffer).set(buf.subarray(at, at + 4 * count));
    return out;
  }
  for (let i = 0; i < count; i++) out[i] = buf.readFloatLE(at + 4 * i);
  return out;
}
