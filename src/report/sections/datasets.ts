/**
 * Table 1: the dataset statistics of the files here beside the paper's (all splits), with the
 * difference, and the splits of the local protocol. Reads the data files (offline); a split that is
 * not available here is listed as missing, never as zeros.
 */
import { DEFAULT_PROTOCOL_OPTIONS, loadProtocol, loadRawSplit } from '../../data/protocol.js';
import { defaultRegistry } from '../../data/registry.js';
import type { DatasetSpec } from '../../data/manifest.js';
import { computeStats, readPaperTable1, type DatasetStats } from '../../data/stats.js';
import type { Document } from '../../data/types.js';
import { LongnerError } from '../../errors.js';
import type { Block } from '../document.js';
import type { ReportContext } from '../context.js';

const HEADER = ['dataset', 'split', 'docs', 'avg words', 'max words', 'entities', 'types', 'avg ent words', 'max ent words'];
const KEYS: (keyof DatasetStats)[] = ['docs', 'avgWords', 'maxWords', 'entities', 'types', 'avgEntityWords', 'maxEntityWords'];

function format(key: keyof DatasetStats, value: number): string {
  return key === 'avgWords' || key === 'avgEntityWords' ? value.toFixed(2) : Math.round(value).toLocaleString('en-US');
}

function statsRow(dataset: string, split: string, s: DatasetStats): string[] {
  return [dataset, split, ...KEYS.map((k) => format(k, s[k]))];
}

function diffRow(dataset: string, ours: DatasetStats, paper: DatasetStats): string[] {
  return [
    dataset,
    '**Δ files here − paper**',
    ...KEYS.map((k) => {
      const d = ours[k] - paper[k];
      return `${d >= 0 ? '+' : ''}${format(k, d)}`;
    }),
  ];
}

export async function datasetTables(ctx: ReportContext): Promise<Block[]> {
  const registry = defaultRegistry();
  const paper = readPaperTable1();
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const name of ctx.datasets) {
    let spec: DatasetSpec;
    try {
      spec = registry.dataset(name);
    } catch (err) {
      if (!(err instanceof LongnerError)) throw err;
      rows.push([name, 'unknown dataset', ...KEYS.map(() => '–')]);
      continue;
    }
    const here: Document[] = [];
    for (const split of spec.splits) {
      if (registry.locate(name, split.split).status === 'missing') {
        rows.push([name, `${split.split} (file)`, '– (missing here)', ...KEYS.slice(1).map(() => '')]);
        continue;
      }
      const raw = await loadRawSplit(name, split.split, { registry, offline: true });
      here.push(...raw.docs);
      rows.push(statsRow(name, `${split.split} (file)`, computeStats(raw.docs)));
    }
    try {
      const data = await loadProtocol(name, { ...DEFAULT_PROTOCOL_OPTIONS, registry });
      for (const split of ['train', 'validation', 'test'] as const) rows.push(statsRow(name, `local protocol ${split}`, computeStats(data[split])));
      notes.push(`${name}: ${data.description}`);
    } catch (err) {
      if (!(err instanceof LongnerError)) throw err;
      notes.push(`${name}: local protocol unavailable: ${err.message}`);
    }
    const ours = here.length > 0 ? computeStats(here) : null;
    if (ours !== null) rows.push(statsRow(name, 'all files here', ours));
    const p = paper[name];
    if (p !== undefined) {
      rows.push(statsRow(name, 'paper Table 1 (all splits)', p));
      if (ours !== null) rows.push(diffRow(name, ours, p));
    }
  }
  return [
    { kind: 'heading', level: 1, text: 'Datasets (paper Table 1)' },
    {
      kind: 'table',
      caption:
        "Statistics in words. File rows count entities as stored; protocol rows after deduplication. The paper's numbers cover all splits, " +
        'including files that are missing here, so the differences mostly measure what is missing (README, Datasets). No runs, no seeds, no preset.',
      header: HEADER,
      align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
      rows,
    },
    { kind: 'list', items: notes },
  ];
}
