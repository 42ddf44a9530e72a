import test from 'ava';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LongnerError } from '../../src/errors.js';
import { createRegistry, loadManifest, parseManifest } from '../../src/data/registry.js';
import { sha256 } from '../../src/util/hash.js';
import { fromRoot } from '../../src/util/paths.js';
import type { Manifest } from '../../src/data/manifest.js';

const body = readFileSync(fromRoot('test', 'fixtures', 'data', 'sener-small.json'));
const goodSha = sha256(body);
const base = mkdtempSync(join(tmpdir(), 'longner-registry-'));
let server: Server;
let url = '';
let closedPortUrl = '';
const hits = new Map<string, number>();

test.before(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === '/good.json') {
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    } else if (path === '/chunked.json') {
      // No Content-Length: the file arrives in pieces and the size comes from the manifest.
      res.writeHead(200);
      res.write(body.subarray(0, 100));
      setTimeout(() => res.end(body.subarray(100)), 20);
    } else if (path === '/lfs.json') {
      res.writeHead(200);
      res.end('version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n');
    } else if (path === '/silent.json') {
      // Accepts the connection and never answers: must hit the short connect timeout.
    } else {
      res.writeHead(404, 'Not Found');
      res.end('no');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // A port that was just free and is now closed: connecting is refused at once.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  closedPortUrl = `http://127.0.0.1:${closedPort}/gone.json`;
});

test.after.always(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(base, { recursive: true, force: true });
});

let counter = 0;
/** A fresh project root and mirror folder per test, so tests never share or touch the real datasets/. */
function setup(split: Partial<Manifest['datasets'][number]['splits'][number]> = {}): { root: string; mirror: string; manifest: Manifest } {
  const root = join(base, `case-${counter++}`);
  const mirror = join(root, 'mirror');
  mkdirSync(join(root, 'project'), { recursive: true });
  const manifest = parseManifest(
    {
      version: 1,
      datasets: [
        {
          name: 'toy',
          title: 'Toy',
          citation: 'test fixture',
          licence: 'none',
          types: ['person', 'org', 'loc'],
          protocols: {
            local: { train: 'dev', validation: 'fraction', test: 'test' },
            paper: { train: 'train', validation: 'dev', test: 'test' },
          },
          splits: [
            {
              split: 'train',
              file: 'train.json',
              format: 'sener',
              sha256: goodSha,
              bytes: body.length,
              docs: 3,
              urls: [`${url}/good.json`],
              howToGet: 'ask the toy maintainers',
              ...split,
            },
            { split: 'dev', file: 'dev.json', format: 'sener', sha256: null, bytes: null, docs: null, urls: [], howToGet: 'make one' },
            { split: 'test', file: 'test.json', format: 'sener', sha256: null, bytes: null, docs: null, urls: [], howToGet: 'make one' },
          ],
        },
        {
          name: 'other',
          title: 'Other',
          citation: '',
          licence: '',
          types: ['x'],
          protocols: {
            local: { train: 'train', validation: 'docs', test: 'train' },
            paper: { train: 'train', validation: 'docs', test: 'train' },
          },
          splits: [{ split: 'train', file: 'a.jsonl', format: 'scirex', sha256: null, bytes: null, docs: null, urls: [], howToGet: 'n/a' }],
        },
      ],
    },
    'test manifest',
  );
  return { root: join(root, 'project'), mirror, manifest };
}

function dirEntries(path: string): string[] {
  return existsSync(path) ? readdirSync(path) : [];
}

test('unknown dataset or split lists the known ones', async (t) => {
  const registry = createRegistry({ ...setup(), mirror: null });
  const e1 = await t.throwsAsync(registry.resolveSplit('nope', 'train'), { instanceOf: LongnerError });
  t.regex(e1?.message ?? '', /unknown dataset "nope" \(known: toy, other\)/);
  const e2 = await t.throwsAsync(registry.resolveSplit('toy', 'validation'), { instanceOf: LongnerError });
  t.regex(e2?.message ?? '', /unknown split "validation" of dataset toy \(known: train, dev, test\)/);
});

test('a good download lands in datasets/<name>/<file> with the right checksum and reports progress', async (t) => {
  const s = setup();
  const registry = createRegistry({ ...s, mirror: null });
  const progress: Array<[number, number | undefined]> = [];
  const path = await registry.resolveSplit('toy', 'train', { onProgress: (b, total) => progress.push([b, total]) });
  t.is(path, join(s.root, 'datasets', 'toy', 'train.json'));
  t.is(sha256(readFileSync(path)), goodSha);
  t.deepEqual(progress.at(-1), [body.length, body.length]);
  t.deepEqual(dirEntries(join(s.root, 'datasets', 'toy')), ['train.json'], 'no temp file left');

  // Found locally the second time: no request.
  const before = hits.get('/good.json');
  t.is(await registry.resolveSplit('toy', 'train'), path);
  t.is(hits.get('/good.json'), before);
  t.is(registry.locate('toy', 'train').status, 'local');
});

test('a download without Content-Length streams in and is checked against the manifest size', async (t) => {
  const s = setup({ urls: [`${url}/chunked.json`] });
  const registry = createRegistry({ ...s, mirror: null });
  const progress: number[] = [];
  const path = await registry.resolveSplit('toy', 'train', { onProgress: (b) => progress.push(b) });
  t.deepEqual(readFileSync(path), body);
  // How many reads the chunks arrive in depends on timing (a loaded machine coalesces them), so only
  // the running total is checked.
  t.true(progress.length >= 1);
  t.is(progress[progress.length - 1], body.length);
});

test('a bad checksum is rejected with expected and actual, and leaves no file', async (t) => {
  const wrong = sha256('something else');
  const s = setup({ sha256: wrong });
  const registry = createRegistry({ ...s, mirror: null });
  const err = await t.throwsAsync(registry.resolveSplit('toy', 'train'), { instanceOf: LongnerError });
  t.true(err?.message.includes(`sha256 mismatch (expected ${wrong}, actual ${goodSha})`), err?.message);
  t.deepEqual(dirEntries(join(s.root, 'datasets', 'toy')), []);
});

test('a wrong size is rejected too', async (t) => {
  const s = setup({ sha256: null, bytes: body.length + 1 });
  const err = await t.throwsAsync(createRegistry({ ...s, mirror: null }).resolveSplit('toy', 'train'));
  t.true(err?.message.includes('size mismatch'), err?.message);
  t.deepEqual(dirEntries(join(s.root, 'datasets', 'toy')), []);
});

test('URLs are tried in order: a 404 then a good one', async (t) => {
  const s = setup({ urls: [`${url}/missing.json`, `${url}/good.json`] });
  const path = await createRegistry({ ...s, mirror: null }).resolveSplit('toy', 'train');
  t.deepEqual(readFileSync(path), body);
});

test('a Git LFS pointer is not taken for the file', async (t) => {
  const s = setup({ sha256: null, bytes: null, urls: [`${url}/lfs.json`] });
  const err = await t.throwsAsync(createRegistry({ ...s, mirror: null }).resolveSplit('toy', 'train'));
  t.true(err?.message.includes('Git LFS pointer'), err?.message);
  t.false(existsSync(join(s.root, 'datasets', 'toy', 'train.json')));
});

test('an unreachable URL gives the full message: file, places looked, URLs with errors, how to get it', async (t) => {
  const s = setup({ urls: [closedPortUrl, `${url}/missing.json`] });
  const registry = createRegistry({ ...s });
  const err = await t.throwsAsync(registry.resolveSplit('toy', 'train'), { instanceOf: LongnerError });
  const msg = err?.message ?? '';
  t.true(msg.startsWith('toy/train (train.json) is not available'), msg);
  t.true(msg.includes('datasets/toy/train.json (not found)'), msg);
  t.true(msg.includes('../mirror/toy/train.json (not found)'), msg);
  t.true(msg.includes(`${closedPortUrl} (`) && msg.includes('ECONNREFUSED'), msg);
  t.true(msg.includes(`${url}/missing.json (HTTP 404 Not Found)`), msg);
  t.true(msg.endsWith('to get it: ask the toy maintainers'), msg);
  t.false(msg.includes('\n'), 'one line');
  t.deepEqual(dirEntries(join(s.root, 'datasets')), []);
});

test('a server that never answers fails on the connect timeout', async (t) => {
  const s = setup({ urls: [`${url}/silent.json`] });
  // The message names the 0.2 s timeout: the request was abandoned by it, not by some later failure.
  const err = await t.throwsAsync(createRegistry({ ...s, mirror: null, connectTimeoutMs: 200 }).resolveSplit('toy', 'train'));
  t.true(err?.message.includes('no response within 0.2 s'), err?.message);
});

test('offline: no request, and the message says so', async (t) => {
  const s = setup();
  let calls = 0;
  const fetchImpl: typeof fetch = async () => {
    calls++;
    throw new Error('should not be called');
  };
  const err = await t.throwsAsync(createRegistry({ ...s, mirror: null, fetchImpl }).resolveSplit('toy', 'train', { offline: true }));
  t.is(calls, 0);
  t.true(err?.message.includes('no download attempted (offline)'), err?.message);
  t.true(err?.message.includes('no mirror folder'), err?.message);
});

test('a split with no URL names that and the hand-made route', async (t) => {
  const s = setup();
  const err = await t.throwsAsync(createRegistry({ ...s, mirror: null }).resolveSplit('toy', 'dev'));
  t.true(err?.message.includes('no public download URL'), err?.message);
  t.true(err?.message.includes('to get it: make one'), err?.message);
});

test('local files win over the mirror; the mirror is used when there is no local file; both are checksum-checked', async (t) => {
  const s = setup();
  const registry = createRegistry(s);
  mkdirSync(join(s.mirror, 'toy'), { recursive: true });
  writeFileSync(join(s.mirror, 'toy', 'train.json'), body);
  writeFileSync(join(s.mirror, 'toy', 'dev.json'), body);
  t.is(await registry.resolveSplit('toy', 'train'), join(s.mirror, 'toy', 'train.json'));
  t.is(registry.locate('toy', 'train').status, 'mirror');

  mkdirSync(join(s.root, 'datasets', 'toy'), { recursive: true });
  writeFileSync(join(s.root, 'datasets', 'toy', 'dev.json'), '{}\n');
  t.is(await registry.resolveSplit('toy', 'dev'), join(s.root, 'datasets', 'toy', 'dev.json'), 'no checksum known: taken as is');

  writeFileSync(join(s.root, 'datasets', 'toy', 'train.json'), 'tampered');
  const err = await t.throwsAsync(registry.resolveSplit('toy', 'train'), { instanceOf: LongnerError });
  t.true(err?.message.startsWith('datasets/toy/train.json: sha256 mismatch'), err?.message);
  t.true(err?.message.includes(`expected ${goodSha}, actual ${sha256('tampered')}`), err?.message);

  // A per-call mirror override is honoured.
  rmSync(join(s.root, 'datasets', 'toy', 'train.json'));
  const elsewhere = join(s.root, 'elsewhere');
  mkdirSync(join(elsewhere, 'toy'), { recursive: true });
  writeFileSync(join(elsewhere, 'toy', 'train.json'), body);
  t.is(await registry.resolveSplit('toy', 'train', { mirror: elsewhere, offline: true }), join(elsewhere, 'toy', 'train.json'));
});

test.serial('the mirror defaults to LONGNER_DATA_MIRROR', async (t) => {
  const s = setup();
  mkdirSync(join(s.mirror, 'toy'), { recursive: true });
  writeFileSync(join(s.mirror, 'toy', 'train.json'), body);
  const saved = process.env.LONGNER_DATA_MIRROR;
  process.env.LONGNER_DATA_MIRROR = s.mirror;
  try {
    const registry = createRegistry({ root: s.root, manifest: s.manifest });
    t.is(registry.mirrorDir(), s.mirror);
    t.is(await registry.resolveSplit('toy', 'train', { offline: true }), join(s.mirror, 'toy', 'train.json'));
  } finally {
    if (saved === undefined) delete process.env.LONGNER_DATA_MIRROR;
    else process.env.LONGNER_DATA_MIRROR = saved;
  }
});

test('listDatasets shows names, types and where each split resolves, without downloading', (t) => {
  const s = setup();
  mkdirSync(join(s.mirror, 'toy'), { recursive: true });
  writeFileSync(join(s.mirror, 'toy', 'test.json'), body);
  mkdirSync(join(s.root, 'datasets', 'toy'), { recursive: true });
  writeFileSync(join(s.root, 'datasets', 'toy', 'dev.json'), body);
  const before = hits.get('/good.json') ?? 0;
  const list = createRegistry(s).listDatasets();
  t.deepEqual(
    list.map((d) => d.name),
    ['toy', 'other'],
  );
  t.deepEqual(list[0]!.types, ['person', 'org', 'loc']);
  t.deepEqual(
    list[0]!.splits.map((x) => [x.split, x.status]),
    [
      ['train', 'missing'],
      ['dev', 'local'],
      ['test', 'mirror'],
    ],
  );
  t.is(list[0]!.splits[2]!.path, join(s.mirror, 'toy', 'test.json'));
  t.is(list[0]!.splits[0]!.sha256, goodSha);
  t.is(hits.get('/good.json') ?? 0, before);
});

test('manifest validation names the bad key', (t) => {
  const good = setup().manifest;
  const broken = structuredClone(good) as unknown as { datasets: Array<{ protocols: { local: { test: string } }; splits: Array<{ sha256: unknown }> }> };
  broken.datasets[0]!.protocols.local.test = 'nope';
  t.throws(() => parseManifest(broken, 'm.json'), { message: /m\.json: datasets\[0\]\.protocols\.local\.test: "nope" is not a split of toy/ });
  const badSha = structuredClone(good) as unknown as typeof broken;
  badSha.datasets[0]!.protocols.local.test = 'test';
  badSha.datasets[0]!.splits[0]!.sha256 = 'xyz';
  t.throws(() => parseManifest(badSha, 'm.json'), { message: /m\.json: datasets\[0\]\.splits\[0\]\.sha256: / });
});

test('the shipped manifest: three datasets, types in SOURCE.md order, checksums of the mirrored files', (t) => {
  const m = loadManifest();
  t.deepEqual(
    m.datasets.map((d) => [d.name, d.types.length]),
    [
      ['scholar-xl', 12],
      ['profiling-07', 13],
      ['scirex', 4],
    ],
  );
  t.deepEqual(m.datasets[2]!.types, ['Method', 'Task', 'Material', 'Metric']);
  const sx = m.datasets[0]!.splits;
  t.is(sx.find((x) => x.split === 'test')!.sha256, '1e144b6a8e95a29609c5dc7489e0f04e3c039a2693903961c8c667fc0e02fc8c');
  t.is(sx.find((x) => x.split === 'train')!.sha256, null);
  t.true(sx.find((x) => x.split === 'train')!.urls[0]!.includes('ed3a4be7971c46d067cf7be6a19efec804f21056'));
  const scirexTest = m.datasets[2]!.splits.find((x) => x.split === 'test')!;
  t.is(scirexTest.format, 'sener');
  t.true(scirexTest.urls[0]!.includes('QAQ123/SciREX'));
  for (const ds of m.datasets) for (const sp of ds.splits) t.true(sp.howToGet.length > 20);
});
