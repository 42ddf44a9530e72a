import type { CommandModule } from 'yargs';
import { LongnerError } from '../errors.js';
import { resolve } from 'node:path';
import { createRegistry, defaultRegistry, type Registry } from '../data/registry.js';
import { DATASET_NAME, USER_FORMATS, saveUserDataset, userRegistryPath, type UserFormat } from '../data/user-datasets.js';
import { DEFAULT_PROTOCOL_OPTIONS, PROTOCOL_NAMES, loadProtocol, loadRawSplit, protocolUses, type ProtocolName } from '../data/protocol.js';
import { computeStats, readPaperTable1, type DatasetStats } from '../data/stats.js';
import type { ProtocolSplit } from '../data/types.js';
import { Progress } from '../util/progress.js';
import { textTable, type Cell } from '../util/table.js';

interface DatasetArgs {
  names?: string[];
}

function selectDatasets(registry: Registry, names: string[] | undefined): string[] {
  const known = registry.datasetNames();
  if (names === undefined || names.length === 0) return known;
  for (const name of names) registry.dataset(name); // throws with the list of known datasets
  return names;
}

const list: CommandModule<object, DatasetArgs> = {
  command: 'list [names..]',
  describe: 'list the registered datasets and your own ($LONGNER_HOME/datasets.json), their splits, and where each split resolves now',
  handler: (args) => {
    const registry = defaultRegistry();
    const wanted = new Set(selectDatasets(registry, args.names));
    for (const ds of registry.listDatasets().filter((d) => wanted.has(d.name))) {
      const source = registry.dataset(ds.name).source;
      console.log(
        `${ds.name}: ${source === undefined ? `${ds.title} (${ds.types.length} types; licence: ${ds.licence})` : `your dataset, defined in ${source} (${ds.types.length} types)`}`,
      );
      const rows: Cell[][] = ds.splits.map((s) => [s.split, s.file, s.docs, s.status, s.path === null ? s.howToGet : registry.display(s.path)]);
      console.log(textTable(['split', 'file', 'docs', 'status', 'where / how to get it'], rows));
      console.log(`types: ${ds.types.join(', ')}\n`);
    }
  },
};

interface FetchArgs extends DatasetArgs {
  split?: string[];
}

const fetchCmd: CommandModule<object, FetchArgs> = {
  command: 'fetch [names..]',
  describe: 'make every split available: found in datasets/ or the mirror, else downloaded; sha256-checked',
  builder: (y) => y.option('split', { type: 'string', array: true, describe: 'only these splits (default: all)' }),
  handler: async (args) => {
    const registry = defaultRegistry();
    const failures: string[] = [];
    for (const name of selectDatasets(registry, args.names)) {
      for (const spec of registry.dataset(name).splits) {
        if (args.split !== undefined && !args.split.includes(spec.split)) continue;
        const bar = new Progress({ label: `${name}/${spec.file}`, total: spec.bytes ?? undefined, unit: ' B' });
        try {
          const path = await registry.resolveSplit(name, spec.split, { onProgress: (bytes) => bar.set(bytes) });
          console.log(`${name} ${spec.split}: ${registry.display(path)}`);
        } catch (err) {
          if (!(err instanceof LongnerError)) throw err;
          failures.push(err.message);
          console.log(`${name} ${spec.split}: missing`);
        }
      }
    }
    if (failures.length > 0) throw new LongnerError(`${failures.length} split(s) could not be fetched:\n${failures.join('\n')}`);
  },
};

interface StatsArgs extends DatasetArgs {
  protocol: ProtocolName;
}

const HEADER = ['dataset', 'split', 'docs', 'avg words', 'max words', 'entities', 'types', 'avg ent words', 'max ent words'];

function statsRow(dataset: string, split: string, s: DatasetStats): Cell[] {
  return [dataset, split, s.docs, s.avgWords, s.maxWords, s.entities, s.types, s.avgEntityWords, s.maxEntityWords];
}

const stats: CommandModule<object, StatsArgs> = {
  command: 'stats [names..]',
  describe: "the paper's Table 1 columns per dataset and split, for the local files, beside the paper's numbers",
  builder: (y) =>
    y.option('protocol', {
      choices: PROTOCOL_NAMES,
      default: DEFAULT_PROTOCOL_OPTIONS.protocol,
      describe: 'evaluation protocol whose train/validation/test splits to show',
    }) as never,
  handler: async (args) => {
    const registry = defaultRegistry();
    const paper = readPaperTable1();
    const rows: Cell[][] = [];
    const notes: string[] = [];
    for (const name of selectDatasets(registry, args.names)) {
      for (const spec of registry.dataset(name).splits) {
        const where = registry.locate(name, spec.split);
        const uses = protocolUses(name, spec.split, args.protocol, registry);
        const role = uses.length > 0 ? ` (-> ${uses.join(' + ')})` : '';
        if (where.status === 'missing') {
          rows.push([name, `${spec.split}${role}`, 'missing', null, null, null, null, null, null]);
          continue;
        }
        const raw = await loadRawSplit(name, spec.split, { registry, offline: true });
        rows.push(statsRow(name, `${spec.split}${role}`, computeStats(raw.docs)));
      }
      try {
        const data = await loadProtocol(name, { ...DEFAULT_PROTOCOL_OPTIONS, protocol: args.protocol, registry });
        for (const split of ['train', 'validation', 'test'] as ProtocolSplit[]) {
          rows.push(statsRow(name, `protocol ${split}`, computeStats(data[split])));
        }
        const t = data.dedup.triplesCollapsed;
        notes.push(
          `${name}: ${data.description}; duplicate (start, end, type) triples collapsed: train ${t.train}, validation ${t.validation}, test ${t.test}`,
        );
      } catch (err) {
        if (!(err instanceof LongnerError)) throw err;
        notes.push(`${name}: ${args.protocol} protocol unavailable: ${err.message}`);
      }
      const p = paper[name];
      if (p !== undefined) rows.push(statsRow(name, 'paper Table 1 (all splits)', p));
    }
    console.log(textTable(HEADER, rows));
    console.log(`\nWords are the datasets' own word tokens; raw splits count entities as stored, protocol splits after dedup.`);
    for (const note of notes) console.log(`- ${note}`);
  },
};

interface AddArgs {
  name: string;
  train: string;
  validation?: string;
  test: string;
  format: UserFormat;
  types?: string[];
}

const add: CommandModule<object, AddArgs> = {
  command: 'add <name>',
  describe:
    'register your own corpus under NAME in $LONGNER_HOME/datasets.json (default ~/.longner), outside the repository; ' +
    'configs then use it with dataset.name: NAME. Every file is read and checked first.',
  builder: (y) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: 'dataset name: lower-case letters, digits and dashes' })
      .option('train', { type: 'string', demandOption: true, describe: 'training file (JSONL, one document per line)' })
      .option('validation', { type: 'string', describe: 'validation file; omitted: a seeded share of train (dataset.validationFraction)' })
      .option('test', { type: 'string', demandOption: true, describe: 'test file' })
      .option('format', {
        choices: USER_FORMATS,
        default: 'auto' as const,
        describe: "layout of the files: sener, scirex, generic, or auto (each file's first line)",
      })
      .option('types', {
        type: 'string',
        array: true,
        describe: 'entity types in label order (default: the sorted types of the training file, inferred when used)',
      }) as never,
  handler: async (args) => {
    if (!DATASET_NAME.test(args.name)) throw new LongnerError(`dataset name "${args.name}": expected lower-case letters, digits and dashes`);
    const entry = {
      name: args.name,
      files: { train: resolve(args.train), validation: args.validation === undefined ? null : resolve(args.validation), test: resolve(args.test) },
      format: args.format,
      types: args.types === undefined || args.types.length === 0 ? null : args.types,
    };
    const file = userRegistryPath();
    // Checked as a run would read it (layout, ids, types, empty splits) before anything is written.
    const registry = createRegistry({ manifest: defaultRegistry().manifest, user: [{ ...entry, source: `datasets add ${args.name}` }] });
    const data = await loadProtocol(args.name, { ...DEFAULT_PROTOCOL_OPTIONS, registry });
    const replaced = saveUserDataset(entry, file);
    console.log(`${replaced ? 'replaced' : 'added'} ${args.name} in ${file}`);
    console.log(`${data.description}`);
    console.log(`types: ${data.types.join(', ')}${entry.types === null ? ' (inferred from the training file)' : ''}`);
  },
};

export const datasetsCommand: CommandModule = {
  command: 'datasets <command>',
  describe: 'list, fetch and describe the Scholar-XL, SciREX and Profiling-07 datasets, and add your own',
  builder: (y) => y.command(list).command(fetchCmd).command(stats).command(add).demandCommand(1),
  handler: () => undefined,
};
