/**
 * A minimal GGUF v3 writer for test models: llama architecture, random weights, a small SentencePiece-style
 * vocabulary with byte fallback. No GGUF model can be downloaded on these machines (research/backends.md 6),
 * so the embedded LLM client is tested on files this module writes. The output is gibberish by design:
 * such a file checks plumbing, grammar-constrained decoding and speed, never quality.
 *
 * Layout (GGUF v3, little endian): magic "GGUF", version 3, tensor count (u64), metadata count (u64),
 * metadata key/value pairs, tensor infos (name, dims with ne0 first, type, offset into the data block),
 * padding to `general.alignment`, then the tensor data, each tensor aligned.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { createRng } from '../util/rng.js';

export interface TestGgufShape {
  /** Embedding width (llama.embedding_length). */
  hidden: number;
  layers: number;
  heads: number;
  /** Key/value heads (grouped-query attention when fewer than `heads`). */
  kvHeads: number;
  /** Feed-forward inner width. */
  ff: number;
  /** Maximum context the metadata declares. */
  contextLength: number;
  /** Weight type: f32, or f16 for half the file size. */
  type: 'f32' | 'f16';
  seed: number;
}

export const TINY_SHAPE: TestGgufShape = {
  hidden: 64,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  ff: 128,
  contextLength: 8192,
  type: 'f32',
  seed: 7,
};

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3;
const ALIGNMENT = 32;

enum ValueType {
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
}
const GGML_F32 = 0;
const GGML_F16 = 1;

/** SentencePiece token types as llama.cpp reads them. */
const TOKEN_NORMAL = 1;
const TOKEN_UNKNOWN = 2;
const TOKEN_CONTROL = 3;
const TOKEN_BYTE = 6;

type MetaValue =
  | { type: 'u32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'strings'; value: readonly string[] }
  | { type: 'f32s'; value: readonly number[] }
  | { type: 'i32s'; value: readonly number[] };

interface Tensor {
  name: string;
  /** ggml order: ne0 (the contiguous dimension) first. */
  dims: number[];
  /** Fills the tensor; called once while writing. */
  fill: (out: Float32Array) => void;
}

/**
 * The vocabulary: <unk>, <s>, </s>, the 256 byte-fallback tokens (so any UTF-8 text, and so any JSON,
 * can be produced), then "▁" (SentencePiece's word-start marker), the printable ASCII characters, and
 * "▁" + each letter. Scores rank earlier pieces first, which is all SentencePiece merging needs.
 */
export function testVocabulary(): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TOKEN_BYTE);
  }
  const normal = ['▁'];
  for (let c = 33; c < 127; c++) normal.push(String.fromCharCode(c));
  for (let c = 97; c < 123; c++) normal.push(`▁${String.fromCharCode(c)}`);
  for (let c = 65; c < 91; c++) normal.push(`▁${String.fromCharCode(c)}`);
  for (const piece of normal) {
    tokens.push(piece);
    types.push(TOKEN_NORMAL);
  }
  const scores = tokens.map((_, i) => (types[i] === TOKEN_NORMAL ? -i : 0));
  return { tokens, scores, types };
}

/** Writes a llama-architecture GGUF with random weights to `path`; returns the file size in bytes. */
export function writeTestGguf(path: string, shape: Partial<TestGgufShape> = {}): number {
  const s: TestGgufShape = { ...TINY_SHAPE, ...shape };
  if (s.hidden % s.heads !== 0) throw new RangeError(`hidden ${s.hidden} is not a multiple of heads ${s.heads}`);
  if (s.heads % s.kvHeads !== 0) throw new RangeError(`heads ${s.heads} is not a multiple of kvHeads ${s.kvHeads}`);
  const headDim = s.hidden / s.heads;
  if (headDim % 2 !== 0) throw new RangeError(`head size ${headDim} must be even (RoPE rotates pairs)`);
  const vocab = testVocabulary();
  const nVocab = vocab.tokens.length;
  const kvWidth = headDim * s.kvHeads;

  const metadata: Array<[string, MetaValue]> = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: 'longner-test-random' }],
    ['general.alignment', { type: 'u32', value: ALIGNMENT }],
    ['llama.context_length', { type: 'u32', value: s.contextLength }],
    ['llama.embedding_length', { type: 'u32', value: s.hidden }],
    ['llama.block_count', { type: 'u32', value: s.layers }],
    ['llama.feed_forward_length', { type: 'u32', value: s.ff }],
    ['llama.attention.head_count', { type: 'u32', value: s.heads }],
    ['llama.attention.head_count_kv', { type: 'u32', value: s.kvHeads }],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: 1e-5 }],
    ['llama.rope.dimension_count', { type: 'u32', value: headDim }],
    ['llama.rope.freq_base', { type: 'f32', value: 10000 }],
    ['llama.vocab_size', { type: 'u32', value: nVocab }],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'strings', value: vocab.tokens }],
    ['tokenizer.ggml.scores', { type: 'f32s', value: vocab.scores }],
    ['tokenizer.ggml.token_type', { type: 'i32s', value: vocab.types }],
    ['tokenizer.ggml.unknown_token_id', { type: 'u32', value: 0 }],
    ['tokenizer.ggml.bos_token_id', { type: 'u32', value: 1 }],
    ['tokenizer.ggml.eos_token_id', { type: 'u32', value: 2 }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
  ];

  const rng = createRng(s.seed);
  // Box-Muller normals scaled like a fresh transformer (std 0.02); the exact values do not matter.
  const normal =
    (std: number) =>
    (out: Float32Array): void => {
      for (let i = 0; i < out.length; i++) {
        const u = Math.max(rng.next(), 1e-12);
        out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
      }
    };
  const ones = (out: Float32Array): void => void out.fill(1);
  const tensors: Tensor[] = [
    { name: 'token_embd.weight', dims: [s.hidden, nVocab], fill: normal(0.02) },
    { name: 'output_norm.weight', dims: [s.hidden], fill: ones },
    { name: 'output.weight', dims: [s.hidden, nVocab], fill: normal(0.02) },
  ];
  for (let l = 0; l < s.layers; l++) {
    const p = `blk.${l}`;
    tensors.push(
      { name: `${p}.attn_norm.weight`, dims: [s.hidden], fill: ones },
      { name: `${p}.attn_q.weight`, dims: [s.hidden, s.hidden], fill: normal(0.02) },
      { name: `${p}.attn_k.weight`, dims: [s.hidden, kvWidth], fill: normal(0.02) },
      { name: `${p}.attn_v.weight`, dims: [s.hidden, kvWidth], fill: normal(0.02) },
      { name: `${p}.attn_output.weight`, dims: [s.hidden, s.hidden], fill: normal(0.02) },
      { name: `${p}.ffn_norm.weight`, dims: [s.hidden], fill: ones },
      { name: `${p}.ffn_gate.weight`, dims: [s.hidden, s.ff], fill: normal(0.02) },
      { name: `${p}.ffn_up.weight`, dims: [s.hidden, s.ff], fill: normal(0.02) },
      { name: `${p}.ffn_down.weight`, dims: [s.ff, s.hidden], fill: normal(0.02) },
    );
  }

  // llama.cpp requires 1-D tensors (norms) in F32 whatever the weight type.
  const tensorType = (t: Tensor): number => (s.type === 'f16' && t.dims.length > 1 ? GGML_F16 : GGML_F32);
  const bytesOf = (t: Tensor): number => t.dims.reduce((a, b) => a * b, 1) * (tensorType(t) === GGML_F16 ? 2 : 4);

  const header = new ByteSink();
  header.u32(GGUF_MAGIC);
  header.u32(GGUF_VERSION);
  header.u64(tensors.length);
  header.u64(metadata.length);
  for (const [key, value] of metadata) {
    header.str(key);
    writeMeta(header, value);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    header.str(t.name);
    header.u32(t.dims.length);
    for (const d of t.dims) header.u64(d);
    header.u32(tensorType(t));
    header.u64(offset);
    offsets.push(offset);
    offset = align(offset + bytesOf(t));
  }
  header.pad(ALIGNMENT);

  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'w');
  try {
    const head = header.bytes();
    writeSync(fd, head);
    let written = 0;
    tensors.forEach((t, i) => {
      const pad = offsets[i]! - written;
      if (pad > 0) writeSync(fd, new Uint8Array(pad));
      const values = new Float32Array(t.dims.reduce((a, b) => a * b, 1));
      t.fill(values);
      const data = tensorType(t) === GGML_F16 ? toHalf(values) : new Uint8Array(values.buffer);
      writeSync(fd, data);
      written = offsets[i]! + data.byteLength;
    });
    const tail = offset - written;
    if (tail > 0) writeSync(fd, new Uint8Array(tail));
    return head.byteLength + offset;
  } finally {
    closeSync(fd);
  }
}

function align(n: number): number {
  return Math.ceil(n / ALIGNMENT) * ALIGNMENT;
}

function writeMeta(sink: ByteSink, v: MetaValue): void {
  switch (v.type) {
    case 'u32':
      sink.u32(ValueType.UINT32);
      sink.u32(v.value);
      return;
    case 'f32':
      sink.u32(ValueType.FLOAT32);
      sink.f32(v.value);
      return;
    case 'bool':
      sink.u32(ValueType.BOOL);
      sink.u8(v.value ? 1 : 0);
      return;
    case 'string':
      sink.u32(ValueType.STRING);
      sink.str(v.value);
      return;
    case 'strings':
      sink.u32(ValueType.ARRAY);
      sink.u32(ValueType.STRING);
      sink.u64(v.value.length);
      for (const item of v.value) sink.str(item);
      return;
    case 'f32s':
      sink.u32(ValueType.ARRAY);
      sink.u32(ValueType.FLOAT32);
      sink.u64(v.value.length);
      for (const item of v.value) sink.f32(item);
      return;
    case 'i32s':
      sink.u32(ValueType.ARRAY);
      sink.u32(ValueType.INT32);
      sink.u64(v.value.length);
      for (const item of v.value) sink.i32(item);
      return;
  }
}

/** IEEE 754 half precision, round to nearest even (values here are small normals, never inf or NaN). */
function toHalf(values: Float32Array): Uint8Array {
  const out = new Uint16Array(values.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i]!;
    const x = u[0]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = ((x >>> 23) & 0xff) - 127 + 15;
    let mant = x & 0x7fffff;
    if (exp <= 0) {
      // Subnormal or zero in half precision.
      if (exp < -10) {
        out[i] = sign;
        continue;
      }
      mant = (mant | 0x800000) >>> (1 - exp);
      out[i] = sign | ((mant + 0x1000) >>> 13);
      continue;
    }
    if (exp >= 31) {
      out[i] = sign | 0x7bff; // clamp to the largest finite half
      continue;
    }
    let h = sign | (exp << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
    out[i] = h;
  }
  return new Uint8Array(out.buffer);
}

/** A growable little-endian byte buffer for the header. */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  private length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }

  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }

  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }

  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }

  u64(v: number): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }

  str(s: string): void {
    const bytes = new TextEncoder().encode(s);
    this.u64(bytes.length);
    this.reserve(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    this.reserve(n);
    this.length += n; // the buffer is zero-filled
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}
