/** Where a result came from: code version, library versions, runtime. Recorded in every result. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { projectRoot } from './paths.js';

/** Packages whose version can change a number in a result; absent optional ones are left out. */
const TRACKED_PACKAGES = [
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
];

/** The software a run ran on, as result.json records it. */
export const EnvSchema = z.strictObject({
  gitCommit: z.string().nullable(),
  packageVersions: z.record(z.string(), z.string()),
  node: z.string(),
  platform: z.string(),
});
export type Env = z.infer<typeof EnvSchema>;

let atStart: Env | undefined;

/**
 * The software of this process, read once: a run calls this when it starts (execute.ts), so the
 * commit its record names is the checkout's at the start, even if the checkout moves on while the
 * run trains (the code already loaded does not).
 */
export function collectEnv(): Env {
  atStart ??= readEnv();
  return atStart;
}

function readEnv(): Env {
  const root = projectRoot();
  const packageVersions: Record<string, string> = {};
  const own = readVersion(join(root, 'package.json'));
  const ownName = readName(join(root, 'package.json')) ?? 'longner';
  if (own !== null) packageVersions[ownName] = own;
  for (const name of TRACKED_PACKAGES) {
    const file = findPackageJson(root, name);
    const version = file === null ? null : readVersion(file);
    if (version !== null) packageVersions[name] = version;
  }
  return {
    gitCommit: gitCommit(root),
    packageVersions,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

function gitCommit(cwd: string): string | null {
  try {
    const out = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8', timeout: 5000 });
    const commit = out.trim();
    return /^[0-9a-f]{40,64}$/.test(commit) ? commit : null;
  } catch {
    // Not a git checkout (an npm tarball) or no git binary: the versions still identify the code.
    return null;
  }
}

/** Node's own lookup order (node_modules of each folder up to the file-system root), without `require`. */
function findPackageJson(from: string, name: string): string | null {
  let dir = from;
  for (;;) {
    const candidate = join(dir, 'node_modules', name, 'package.json');
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

function readPackageJson(file: string): Record<string, unknown> | null {
  try {
    const data: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return data !== null && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function readVersion(file: string): string | null {
  const version = readPackageJson(file)?.version;
  return typeof version === 'string' ? version : null;
}

function readName(file: string): string | null {
  const name = readPackageJson(file)?.name;
  return typeof name === 'string' ? name : null;
}
