import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { LongnerError } from '../errors.js';
import { sha256File } from '../util/hash.js';
import { fromRoot, projectRoot } from '../util/paths.js';
import type { Config } from '../config/schema.js';
import { manifestSchema, type DatasetSpec, type Manifest, type SplitSpec } from './manifest.js';
import { configDataset, readUserRegistry, userDatasetSpec, userRegistryPath, type UserDataset } from './user-datasets.js';

/**
 * The dataset registry: which files make up each dataset (datasets/manifest.json), where each file is
 * on this machine, and how to fetch it. A split resolves, in order, to
 *   1. <root>/datasets/<name>/<file>          (downloads and files a user put there by hand),
 *   2. <mirror>/<name>/<file>                 (a read-only shared copy: LONGNER_DATA_MIRROR, or ../shared/datasets),
 *   3. a download from the manifest's URLs into 1.
 * Files with a known sha256 are checked wherever they come from.
 *
 * Besides the manifest's datasets, a registry holds the user's own (user-datasets.ts): the entries of
 * the user registry ($LONGNER_HOME/datasets.json, written by `longner datasets add`) and a config's
 * `dataset.files`. Their splits name absolute paths, and are read from there and nowhere else.
 */

/** Validates a manifest object; `source` names it in errors. */
export function parseManifest(value: unknown, source: string): Manifest {
  const parsed = manifestSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const at = issue.path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('')
      .replace(/^\./, '');
    throw new LongnerError(`${source}: ${at || 'the manifest'}: ${issue.message}`);
  }
  const manifest = parsed.data;
  const names = new Set<string>();
  for (const [i, ds] of manifest.datasets.entries()) {
    if (names.has(ds.name)) throw new LongnerError(`${source}: datasets[${i}].name: "${ds.name}" appears twice`);
    names.add(ds.name);
    const splits = new Set(ds.splits.map((s) => s.split));
    for (const [pname, p] of Object.entries(ds.protocols)) {
      for (const role of ['train', 'test'] as const) {
        if (!splits.has(p[role])) {
          throw new LongnerError(`${source}: datasets[${i}].protocols.${pname}.${role}: "${p[role]}" is not a split of ${ds.name}`);
        }
      }
      if (p.validation !== 'fraction' && p.validation !== 'docs' && !splits.has(p.validation)) {
        throw new LongnerError(
          `${source}: datasets[${i}].protocols.${pname}.validation: expected "fraction", "docs" or a split of ${ds.name}, got "${p.validation}"`,
        );
      }
    }
  }
  return manifest;
}

export function loadManifest(path: string = fromRoot('datasets', 'manifest.json')): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new LongnerError(`${path}: cannot read the dataset manifest (${err instanceof Error ? err.message : String(err)})`);
  }
  return parseManifest(value, path);
}

export interface ResolveOptions {
  /** Never download; fail with the full "where I looked" message instead. */
  offline?: boolean;
  /** Overrides the registry's mirror folder for this call. */
  mirror?: string;
  fetchImpl?: typeof fetch;
  /** Called as bytes arrive; `total` from Content-Length or the manifest when known. */
  onProgress?: (bytes: number, total?: number) => void;
}

export type SplitStatus = 'local' | 'mirror' | 'missing';

export interface SplitListing {
  split: string;
  file: string;
  format: SplitSpec['format'];
  docs: number | null;
  bytes: number | null;
  sha256: string | null;
  note: string | null;
  urls: string[];
  howToGet: string;
  /** Where the split resolves right now, without downloading or hashing. */
  status: SplitStatus;
  path: string | null;
}

export interface DatasetListing {
  name: string;
  title: string;
  citation: string;
  licence: string;
  types: string[];
  splits: SplitListing[];
}

export interface Registry {
  /** The project root whose `datasets/` folder receives downloads. */
  readonly root: string;
  readonly manifest: Manifest;
  datasetNames(): string[];
  /** Throws a LongnerError listing the known datasets. */
  dataset(name: string): DatasetSpec;
  /** Throws a LongnerError listing the dataset's splits. */
  split(dataset: string, split: string): SplitSpec;
  /** The mirror folder in effect (option, env LONGNER_DATA_MIRROR, or <root>/../shared/datasets), or null. */
  mirrorDir(override?: string): string | null;
  /** Where a split is now, without downloading or hashing. */
  locate(dataset: string, split: string, mirror?: string): { status: SplitStatus; path: string | null };
  resolveSplit(dataset: string, split: string, opts?: ResolveOptions): Promise<string>;
  listDatasets(): DatasetListing[];
  /** Shows a path relative to the root when it is near it, for messages. */
  display(path: string): string;
}

export interface RegistryOptions {
  /** Default: the project root. */
  root?: string;
  /** A mirror folder; `null` for none; default: env LONGNER_DATA_MIRROR, else <root>/../shared/datasets if it exists. */
  mirror?: string | null;
  /** Default: the project's datasets/manifest.json. */
  manifest?: Manifest;
  fetchImpl?: typeof fetch;
  /** How long to wait for a server's response headers; short, so an offline machine fails fast. */
  connectTimeoutMs?: number;
  /** How long a download may stall between chunks. */
  idleTimeoutMs?: number;
  /** The user's datasets (user-datasets.ts), after the manifest's; a name may not repeat one of the manifest's. */
  user?: UserDataset[];
}

/** Files already hashed in this process, keyed by path, size and mtime, so a changed file is hashed again. */
const verified = new Map<string, string>();

function fileKey(path: string): string {
  const st = statSync(path);
  return `${path}\u0000${st.size}\u0000${st.mtimeMs}`;
}

async function fileSha256(path: string): Promise<string> {
  const key = fileKey(path);
  const known = verified.get(key);
  if (known !== undefined) return known;
  const digest = await sha256File(path);
  verified.set(key, digest);
  return digest;
}

/** A user dataset's file (they are never downloaded) that is not there. */
export function userFileMissing(ds: DatasetSpec, spec: SplitSpec): LongnerError {
  return new LongnerError(
    `${ds.source ?? ds.name}: the ${spec.split} file of dataset ${ds.name}, ${spec.path ?? spec.file}, does not exist; expected a JSONL file`,
  );
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export function createRegistry(options: RegistryOptions = {}): Registry {
  const root = resolve(options.root ?? projectRoot());
  const manifest = options.manifest ?? loadManifest();
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;

  const display = (path: string): string => {
    const rel = relative(root, path);
    if (rel === '' || isAbsolute(rel)) return path;
    // `../shared/datasets/x` reads well; a path far outside the project does not.
    const ups = rel.split(sep).filter((p) => p === '..').length;
    return ups <= 2 ? rel.split(sep).join('/') : path;
  };

  const user = new Map<string, UserDataset>();
  for (const entry of options.user ?? []) {
    if (manifest.datasets.some((d) => d.name === entry.name)) {
      throw new LongnerError(`${entry.source}: dataset name "${entry.name}" is taken by a registered dataset (datasets/manifest.json); expected another name`);
    }
    user.set(entry.name, entry);
  }
  // Built on first use: inferring types reads the training file, which only the datasets in use need.
  const userSpecs = new Map<string, DatasetSpec>();

  const datasetNames = (): string[] => [...manifest.datasets.map((d) => d.name), ...user.keys()];

  const dataset = (name: string): DatasetSpec => {
    const key = name.toLowerCase();
    const found = manifest.datasets.find((d) => d.name === key);
    if (found) return found;
    const entry = user.get(name) ?? user.get(key);
    if (entry === undefined) {
      throw new LongnerError(
        `unknown dataset "${name}" (known: ${datasetNames().join(', ')}); ` +
          'for your own corpus set dataset.files in the config, or run `longner datasets add NAME --train F --validation F --test F`',
      );
    }
    let spec = userSpecs.get(entry.name);
    if (spec === undefined) {
      spec = userDatasetSpec(entry);
      userSpecs.set(entry.name, spec);
    }
    return spec;
  };

  const split = (name: string, splitName: string): SplitSpec => {
    const ds = dataset(name);
    const found = ds.splits.find((s) => s.split === splitName);
    if (!found) {
      throw new LongnerError(`unknown split "${splitName}" of dataset ${ds.name} (known: ${ds.splits.map((s) => s.split).join(', ')})`);
    }
    return found;
  };

  const mirrorDir = (override?: string): string | null => {
    if (override !== undefined) return resolve(override);
    if (options.mirror !== undefined) return options.mirror === null ? null : resolve(options.mirror);
    const env = process.env.LONGNER_DATA_MIRROR;
    if (env !== undefined && env.trim() !== '') return resolve(env);
    const shared = resolve(root, '..', 'shared', 'datasets');
    return existsSync(shared) ? shared : null;
  };

  const localPath = (ds: DatasetSpec, spec: SplitSpec): string => join(root, 'datasets', ds.name, spec.file);

  const locate = (name: string, splitName: string, mirror?: string): { status: SplitStatus; path: string | null } => {
    const ds = dataset(name);
    const spec = split(name, splitName);
    if (spec.path !== undefined) return isFile(spec.path) ? { status: 'local', path: spec.path } : { status: 'missing', path: null };
    const local = localPath(ds, spec);
    if (isFile(local)) return { status: 'local', path: local };
    const m = mirrorDir(mirror);
    if (m !== null) {
      const p = join(m, ds.name, spec.file);
      if (isFile(p)) return { status: 'mirror', path: p };
    }
    return { status: 'missing', path: null };
  };

  const checkFile = async (path: string, ds: DatasetSpec, spec: SplitSpec): Promise<void> => {
    if (spec.sha256 === null) return;
    const actual = await fileSha256(path);
    if (actual !== spec.sha256) {
      throw new LongnerError(
        `${display(path)}: sha256 mismatch for ${ds.name}/${spec.split} (expected ${spec.sha256}, actual ${actual}); ` +
          `remove or replace the file (${spec.howToGet})`,
      );
    }
  };

  const resolveSplit = async (name: string, splitName: string, opts: ResolveOptions = {}): Promise<string> => {
    const ds = dataset(name);
    const spec = split(name, splitName);
    if (spec.path !== undefined) {
      if (isFile(spec.path)) return spec.path;
      throw userFileMissing(ds, spec);
    }
    const looked: string[] = [];

    const local = localPath(ds, spec);
    if (isFile(local)) {
      await checkFile(local, ds, spec);
      return local;
    }
    looked.push(`${display(local)} (not found)`);

    const m = mirrorDir(opts.mirror);
    if (m === null) {
      looked.push('no mirror folder (set LONGNER_DATA_MIRROR)');
    } else {
      const p = join(m, ds.name, spec.file);
      if (isFile(p)) {
        await checkFile(p, ds, spec);
        return p;
      }
      looked.push(`${display(p)} (not found)`);
    }

    const tried: string[] = [];
    if (opts.offline) {
      tried.push('no download attempted (offline)');
    } else if (spec.urls.length === 0) {
      tried.push('no public download URL');
    } else {
      const fetchImpl = opts.fetchImpl ?? options.fetchImpl ?? globalThis.fetch;
      for (const url of spec.urls) {
        try {
          await download(url, local, spec, { fetchImpl, connectTimeoutMs, idleTimeoutMs, onProgress: opts.onProgress });
          return local;
        } catch (err) {
          tried.push(`${url} (${errorText(err)})`);
        }
      }
    }
    throw new LongnerError(
      `${ds.name}/${spec.split} (${spec.file}) is not available: looked in ${looked.join(', ')}; ` +
        `${spec.urls.length > 0 && !opts.offline ? 'tried ' : ''}${tried.join(', ')}; to get it: ${spec.howToGet}`,
    );
  };

  const listDatasets = (): DatasetListing[] =>
    datasetNames()
      .map(dataset)
      .map((ds) => ({
        name: ds.name,
        title: ds.title,
        citation: ds.citation,
        licence: ds.licence,
        types: ds.types.slice(),
        splits: ds.splits.map((s) => {
          const where = locate(ds.name, s.split);
          return {
            split: s.split,
            file: s.file,
            format: s.format,
            docs: s.docs,
            bytes: s.bytes,
            sha256: s.sha256,
            note: s.note ?? null,
            urls: s.urls.slice(),
            howToGet: s.howToGet,
            status: where.status,
            path: where.path,
          };
        }),
      }));

  return { root, manifest, datasetNames, dataset, split, mirrorDir, locate, resolveSplit, listDatasets, display };
}

// ---------------------------------------------------------------------------------------------
// Downloading

interface DownloadOptions {
  fetchImpl: typeof fetch;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  onProgress?: ((bytes: number, total?: number) => void) | undefined;
}

class DownloadError extends Error {}

const LFS_POINTER = 'version https://git-lfs.github.com/spec/';

/**
 * Streams `url` into a temp file beside `dest`, checks size and sha256 when the manifest knows them,
 * and renames it into place only when complete and correct; on any failure the temp file is removed.
 */
async function download(url: string, dest: string, spec: SplitSpec, opts: DownloadOptions): Promise<void> {
  const tmp = `${dest}.${process.pid}.${Date.now()}.download.tmp`;
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arm = (ms: number, why: string): void => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new DownloadError(why)), ms);
  };
  try {
    arm(opts.connectTimeoutMs, `no response within ${seconds(opts.connectTimeoutMs)}`);
    let res: Response;
    try {
      res = await opts.fetchImpl(url, { signal: controller.signal, redirect: 'follow' });
    } catch (err) {
      throw controller.signal.aborted ? controller.signal.reason : err;
    }
    if (!res.ok) throw new DownloadError(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
    if (res.body === null) throw new DownloadError('empty response');
    const header = Number(res.headers.get('content-length'));
    const announced = Number.isFinite(header) && header > 0 ? header : undefined;
    const total = announced ?? spec.bytes ?? undefined;

    const hash = createHash('sha256');
    // Created only once a server answers, so failed attempts leave no empty folders behind.
    mkdirSync(dirname(dest), { recursive: true });
    const fh = await open(tmp, 'w');
    let bytes = 0;
    try {
      const reader = res.body.getReader();
      for (;;) {
        arm(opts.idleTimeoutMs, `download stalled for ${seconds(opts.idleTimeoutMs)}`);
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (err) {
          throw controller.signal.aborted ? controller.signal.reason : err;
        }
        if (chunk.done) break;
        if (bytes === 0 && Buffer.from(chunk.value.subarray(0, LFS_POINTER.length)).toString('latin1') === LFS_POINTER) {
          throw new DownloadError('the server sent a Git LFS pointer, not the file');
        }
        await fh.write(chunk.value);
        hash.update(chunk.value);
        bytes += chunk.value.length;
        opts.onProgress?.(bytes, total);
      }
    } finally {
      await fh.close();
    }
    clearTimeout(timer);
    if (announced !== undefined && bytes !== announced) throw new DownloadError(`incomplete download (${bytes} of ${announced} bytes)`);
    if (spec.bytes !== null && bytes !== spec.bytes) throw new DownloadError(`size mismatch (expected ${spec.bytes} bytes, actual ${bytes})`);
    const actual = hash.digest('hex');
    if (spec.sha256 !== null && actual !== spec.sha256) {
      throw new DownloadError(`sha256 mismatch (expected ${spec.sha256}, actual ${actual})`);
    }
    renameSync(tmp, dest);
    verified.set(fileKey(dest), actual);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function seconds(ms: number): string {
  return `${+(ms / 1000).toFixed(1)} s`;
}

/** The useful part of a fetch failure: Node's fetch says "fetch failed" and hides the reason in `cause`. */
function errorText(err: unknown): string {
  if (err instanceof DownloadError || err instanceof LongnerError) return err.message;
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof Error) {
      const code = (cause as { code?: unknown }).code;
      return typeof code === 'string' && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message;
    }
    return err.message;
  }
  return String(err);
}

// ---------------------------------------------------------------------------------------------
// Module-level defaults over the project's own manifest and datasets/ folder

let defaultInstance: { registry: Registry; userFile: string; stamp: string } | undefined;

/** The manifest's datasets and the user registry's; rebuilt when the user registry file changes. */
export function defaultRegistry(): Registry {
  const userFile = userRegistryPath();
  const stamp = existsSync(userFile) ? fileKey(userFile) : 'absent';
  if (defaultInstance === undefined || defaultInstance.userFile !== userFile || defaultInstance.stamp !== stamp) {
    const previous = defaultInstance?.registry.manifest;
    defaultInstance = { registry: createRegistry({ manifest: previous, user: readUserRegistry(userFile) }), userFile, stamp };
  }
  return defaultInstance.registry;
}

/**
 * The registry a config reads its data from: the default one, plus the config's own `dataset.files`
 * (which replaces a user-registry entry of the same name).
 */
export function registryFor(config: Config): Registry {
  const own = configDataset(config);
  if (own === null) return defaultRegistry();
  const base = defaultRegistry();
  const userFile = userRegistryPath();
  const others = readUserRegistry(userFile).filter((d) => d.name !== own.name);
  return createRegistry({ manifest: base.manifest, user: [...others, own] });
}

export function resolveSplit(dataset: string, split: string, opts?: ResolveOptions): Promise<string> {
  return defaultRegistry().resolveSplit(dataset, split, opts);
}

export function listDatasets(): DatasetListing[] {
  return defaultRegistry().listDatasets();
}
