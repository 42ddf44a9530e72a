/**
 * Sub-word tokenizer: a BPE model trained with the Hugging Face `tokenizers` node binding,
 * capped at a vocabulary size, with the special tokens at fixed ids.
 *
 * Words are tokenized one at a time (as the SeNER reference code does with its per-word cache),
 * so a token never spans two words and every token knows its word.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tk from 'tokenizers';
import { LongnerError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';

/** Special tokens and their fixed ids: every model and the segmenter may rely on these. */
export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;
export const PAD_ID = 0;
export const UNK_ID = 1;
export const CLS_ID = 2;
export const SEP_ID = 3;
export const MASK_ID = 4;

/** The binding's JS API trains with its default trainer, which stops at this many tokens. */
const LIBRARY_TRAINER_VOCAB = 30_000;
const FILE_FORMAT = 'longner-subword-tokenizer';
const FILE_VERSION = 1;

export interface TokenizedWords {
  /** Sub-word ids, without special tokens. */
  ids: Int32Array;
  /** For each token, the index of the word it belongs to. */
  wordIndex: Int32Array;
}

export interface TrainOptions {
  /** Final vocabulary size cap, special tokens included. */
  vocabSize: number;
  lowercase?: boolean;
}

interface Meta {
  lowercase: boolean;
  requestedVocabSize: number;
}

type LibTokenizer = InstanceType<typeof tk.Tokenizer>;

export class SubwordTokenizer {
  readonly vocabSize: number;
  readonly lowercase: boolean;
  readonly pad = PAD_ID;
  readonly unk = UNK_ID;
  readonly cls = CLS_ID;
  readonly sep = SEP_ID;
  readonly mask = MASK_ID;

  private readonly idToTokenTable: string[];
  private readonly cache = new Map<string, Int32Array>();

  private constructor(
    private readonly lib: LibTokenizer,
    /** The library's own tokenizer JSON, kept verbatim so save/load round-trips exactly. */
    private readonly libJson: unknown,
    private readonly meta: Meta,
  ) {
    this.lowercase = meta.lowercase;
    const vocab = lib.getVocab(true);
    const table: string[] = [];
    for (const [token, id] of Object.entries(vocab)) table[id] = token;
    for (let id = 0; id < table.length; id++) {
      if (table[id] === undefined) throw new Error(`tokenizer vocabulary has a gap at id ${id}`);
    }
    SPECIAL_TOKENS.forEach((tok, id) => {
      if (table[id] !== tok) throw new Error(`tokenizer vocabulary must hold ${tok} at id ${id}, found ${table[id]}`);
    });
    this.idToTokenTable = table;
    this.vocabSize = table.length;
  }

  static async train(words: Iterable<string>, opts: TrainOptions): Promise<SubwordTokenizer> {
    const { vocabSize } = opts;
    const lowercase = opts.lowercase ?? false;
    if (!Number.isInteger(vocabSize) || vocabSize < SPECIAL_TOKENS.length + 1) {
      throw new LongnerError(`tokenizer.vocabSize must be an integer > ${SPECIAL_TOKENS.length} (got ${vocabSize})`);
    }
    if (vocabSize > LIBRARY_TRAINER_VOCAB + SPECIAL_TOKENS.length) {
      throw new LongnerError(
        `tokenizer.vocabSize must be <= ${LIBRARY_TRAINER_VOCAB + SPECIAL_TOKENS.length} ` +
          `(the tokenizers node binding trains at most ${LIBRARY_TRAINER_VOCAB} tokens; got ${vocabSize})`,
      );
    }

    const trained = trainFullBpe(words, lowercase);
    const { vocab, merges } = capVocabulary(trained, vocabSize);

    const model = tk.BPE.init(vocab, merges, { unkToken: SPECIAL_TOKENS[UNK_ID] });
    const lib = new tk.Tokenizer(model);
    configure(lib, lowercase);
    const libJson = readLibraryJson(lib);
    return new SubwordTokenizer(lib, libJson, { lowercase, requestedVocabSize: vocabSize });
  }

  static load(path: string): SubwordTokenizer {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new LongnerError(`cannot read tokenizer file ${path}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new LongnerError(`tokenizer file ${path} is not valid JSON: ${(err as Error).message}`);
    }
    if (!isRecord(parsed) || parsed.format !== FILE_FORMAT) {
      throw new LongnerError(`${path} is not a longner tokenizer file (expected "format": "${FILE_FORMAT}")`);
    }
    if (parsed.version !== FILE_VERSION) {
      throw new LongnerError(`tokenizer file ${path} has version ${String(parsed.version)}; this build reads ${FILE_VERSION}`);
    }
    const lowercase = parsed.lowercase;
    const requested = parsed.requestedVocabSize;
    const libJson = parsed.tokenizer;
    if (typeof lowercase !== 'boolean' || typeof requested !== 'number' || !isRecord(libJson)) {
      throw new LongnerError(`tokenizer file ${path} is missing lowercase, requestedVocabSize or tokenizer`);
    }
    let lib: LibTokenizer;
    try {
      lib = tk.Tokenizer.fromString(JSON.stringify(libJson));
    } catch (err) {
      throw new LongnerError(`tokenizer file ${path}: the tokenizer JSON does not load: ${(err as Error).message}`);
    }
    const tok = new SubwordTokenizer(lib, libJson, { lowercase, requestedVocabSize: requested });
    if (parsed.vocabSize !== tok.vocabSize) {
      throw new LongnerError(`tokenizer file ${path} says vocabSize ${String(parsed.vocabSize)} but holds ${tok.vocabSize} tokens`);
    }
    return tok;
  }

  /**
   * The `trainedOn` key a tokenizer file was saved with (pipeline.ts: the tokenizer options and the
   * corpus's identity, data fingerprints included), or null for a file saved without one.
   */
  static readKey(path: string): string | null {
    try {
      const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
      return isRecord(parsed) && typeof parsed.trainedOn === 'string' ? parsed.trainedOn : null;
    } catch {
      return null;
    }
  }

  /** One JSON file: our metadata plus the library's tokenizer JSON under `tokenizer`; `key` is what it was trained on. */
  save(path: string, key?: string): void {
    const file = {
      format: FILE_FORMAT,
      version: FILE_VERSION,
      ...(key === undefined ? {} : { trainedOn: key }),
      vocabSize: this.vocabSize,
      requestedVocabSize: this.meta.requestedVocabSize,
      lowercase: this.meta.lowercase,
      specialTokens: Object.fromEntries(SPECIAL_TOKENS.map((t, id) => [t, id])),
      tokenizer: this.libJson,
    };
    // Compact: a 30k vocabulary with merges is megabytes when pretty-printed.
    writeFileAtomic(path, `${JSON.stringify(file)}\n`);
  }

  idToToken(id: number): string {
    const token = this.idToTokenTable[id];
    if (token === undefined) throw new RangeError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
    return token;
  }

  /**
   * Tokenizes each word on its own. Results are cached per word for the life of this instance
   * (a corpus has far fewer distinct words than words); the words not yet seen go through one
   * `encodeBatch` call. A word that yields no token (empty, or only whitespace) becomes [UNK],
   * so every word has at least one token.
   */
  async encodeWords(words: readonly string[]): Promise<TokenizedWords> {
    const missing = new Set<string>();
    for (const w of words) if (!this.cache.has(w)) missing.add(w);
    if (missing.size > 0) {
      const batch = [...missing];
      const encodings = await this.lib.encodeBatch(batch, { addSpecialTokens: false });
      for (let i = 0; i < batch.length; i++) {
        const ids = encodings[i]!.getIds();
        this.cache.set(batch[i]!, ids.length > 0 ? Int32Array.from(ids) : Int32Array.of(UNK_ID));
      }
    }

    const perWord: Int32Array[] = new Array(words.length);
    let total = 0;
    for (let w = 0; w < words.length; w++) {
      const ids = this.cache.get(words[w]!)!;
      perWord[w] = ids;
      total += ids.length;
    }
    const ids = new Int32Array(total);
    const wordIndex = new Int32Array(total);
    let at = 0;
    for (let w = 0; w < words.length; w++) {
      const piece = perWord[w]!;
      ids.set(piece, at);
      wordIndex.fill(w, at, at + piece.length);
      at += piece.length;
    }
    return { ids, wordIndex };
  }
}

interface TrainedBpe {
  /** Token -> id as the library's trainer assigned them: the alphabet first, then one id per new merge result. */
  vocab: Map<string, number>;
  /** In learned order. */
  merges: [string, string][];
}

function configure(lib: LibTokenizer, lowercase: boolean): void {
  // Whitespace split only matters for a "word" that itself contains whitespace: its pieces stay with that word.
  lib.setPreTokenizer(tk.whitespaceSplitPreTokenizer());
  if (lowercase) lib.setNormalizer(tk.lowercase());
}

/** Trains the library's default BPE trainer (vocabulary 30,000) on the words, one word per line. */
function trainFullBpe(words: Iterable<string>, lowercase: boolean): TrainedBpe {
  const dir = mkdtempSync(join(tmpdir(), 'longner-tokenizer-'));
  try {
    const corpus = join(dir, 'words.txt');
    writeLines(corpus, words);
    const lib = new tk.Tokenizer(tk.BPE.empty());
    configure(lib, lowercase);
    // Note: the library's progress display writes a few blank lines to stdout here; it has no switch.
    lib.train([corpus]);
    return parseTrainedModel(readLibraryJson(lib));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function writeLines(path: string, words: Iterable<string>): void {
  const fd = openSync(path, 'w');
  try {
    let chunk: string[] = [];
    let chars = 0;
    for (const w of words) {
      chunk.push(w);
      chars += w.length + 1;
      if (chars > 1 << 20) {
        writeSync(fd, `${chunk.join('\n')}\n`);
        chunk = [];
        chars = 0;
      }
    }
    if (chunk.length > 0) writeSync(fd, `${chunk.join('\n')}\n`);
  } finally {
    closeSync(fd);
  }
}

/** The binding has no to-string; round-trip through a temp file. */
function readLibraryJson(lib: LibTokenizer): unknown {
  const dir = mkdtempSync(join(tmpdir(), 'longner-tokenizer-'));
  try {
    const file = join(dir, 'tokenizer.json');
    lib.save(file, false);
    return JSON.parse(readFileSync(file, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function parseTrainedModel(json: unknown): TrainedBpe {
  const model = isRecord(json) ? json.model : undefined;
  if (!isRecord(model) || model.type !== 'BPE' || !isRecord(model.vocab) || !Array.isArray(model.merges)) {
    throw new Error('tokenizers library produced an unexpected model JSON (expected a BPE model with vocab and merges)');
  }
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(model.vocab)) {
    if (typeof id !== 'number') throw new Error(`tokenizers library produced a non-numeric id for ${token}`);
    vocab.set(token, id);
  }
  const merges = model.merges.map((m: unknown): [string, string] => {
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
    // Older library versions wrote "a b"; whitespace never occurs inside a token here.
    if (typeof m === 'string' && m.indexOf(' ') > 0) {
      const space = m.indexOf(' ');
      return [m.slice(0, space), m.slice(space + 1)];
    }
    throw new Error(`tokenizers library produced an unexpected merge entry ${JSON.stringify(m)}`);
  });
  return { vocab, merges };
}

/**
 * Keeps the alphabet plus the first merges in learned order until the vocabulary (specials
 * included) reaches `cap`, and renumbers: specials 0..4, then the alphabet, then merge results.
 *
 * Why a prefix of the merges is right: BPE training is greedy; each step merges the most frequent
 * pair given the merges before it, and the vocabulary size only decides when to stop. So the
 * first K merges of a 30,000-token run are exactly what a trainer with the smaller vocabulary
 * learns. As in the library's trainer, a merge whose result is already in the vocabulary does
 * not grow it, and training stops as soon as the vocabulary is full.
 */
function capVocabulary(trained: TrainedBpe, cap: number): { vocab: Record<string, number>; merges: [string, string][] } {
  assertLearnedOrder(trained);
  const mergeResults = new Set(trained.merges.map(([a, b]) => a + b));
  const alphabet = [...trained.vocab.entries()]
    .filter(([token]) => !mergeResults.has(token))
    .sort((x, y) => x[1] - y[1])
    .map(([token]) => token);

  const vocab = new Map<string, number>();
  const add = (token: string): void => {
    // A token equal to a special's text (a corpus that contains "[MASK]") maps to the special's id.
    if (!vocab.has(token)) vocab.set(token, vocab.size);
  };
  SPECIAL_TOKENS.forEach(add);
  alphabet.forEach(add);
  if (vocab.size > cap) {
    throw new LongnerError(
      `tokenizer.vocabSize ${cap} is too small: the training words use ${alphabet.length} distinct characters, ` +
        `which with the ${SPECIAL_TOKENS.length} special tokens need ${vocab.size}`,
    );
  }
  const merges: [string, string][] = [];
  for (const merge of trained.merges) {
    if (vocab.size >= cap) break;
    merges.push(merge);
    add(merge[0] + merge[1]);
  }
  return { vocab: Object.fromEntries(vocab), merges };
}

/**
 * The cap relies on `model.merges` being in learned order. The trainer gives each new merge result
 * the next id, so learned order shows as: both parts of a merge exist before it, and each merge
 * that creates a new token creates the next id.
 */
function assertLearnedOrder({ vocab, merges }: TrainedBpe): void {
  const mergeResults = new Set(merges.map(([a, b]) => a + b));
  let nextId = 0;
  const known = new Set<string>();
  for (const [token] of vocab) {
    if (!mergeResults.has(token)) {
      known.add(token);
      nextId++;
    }
  }
  for (const [i, [a, b]] of merges.entries()) {
    if (!known.has(a) || !known.has(b)) {
      throw new Error(`tokenizers library merges are not in learned order: merge ${i} (${a} ${b}) uses a later token`);
    }
    const result = a + b;
    if (known.has(result)) continue;
    if (vocab.get(result) !== nextId) {
      throw new Error(`tokenizers library merges are not in learned order: merge ${i} creates id ${vocab.get(result)}, expected ${nextId}`);
    }
    known.add(result);
    nextId++;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
