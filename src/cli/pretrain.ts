import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { BACKEND_CHOICES, initBackend, type BackendChoice } from '../backend/index.js';
import { loadConfig } from '../config/load.js';
import { EXPORT_DTYPES, exportEncoder, pretrain, pretrainRunDir, type ExportDtype, type PretrainResult } from '../train/pretrain/index.js';
import { formatBytes } from '../util/bytes.js';
import { runsRoot } from '../util/paths.js';
import { withConfigOptions, withRunsDir, type ConfigArgs, type RunsDirArgs } from './config.js';

interface PretrainArgs extends ConfigArgs, RunsDirArgs {
  resume?: boolean;
  backend?: BackendChoice;
  export?: string;
  dtype?: ExportDtype;
}

function fmt(x: number | null, digits: number): string {
  return x === null ? 'n/a' : x.toFixed(digits);
}

/** Prints the run's outcome; false when it did not finish 'ok'. */
function report(r: PretrainResult): boolean {
  const s = r.summary;
  console.log(`run folder: ${r.dir}`);
  if (s === null) {
    console.log(`status: ${r.status}`);
    return false;
  }
  console.log(`status: ${s.status}${s.reason ? ` (${s.reason})` : ''}`);
  console.log(`steps: ${s.steps}, corpus: ${s.corpus.documents} documents, ${s.corpus.pieces} pieces, ${s.corpus.tokens} tokens`);
  console.log(`final loss: ${fmt(s.finalLoss, 4)}`);
  console.log(`speed: ${fmt(s.tokensPerSecond, 0)} tokens/s, ${fmt(s.msPerStep, 1)} ms/step on ${s.backend}; wall ${s.wallSeconds.toFixed(0)} s`);
  if (s.status === 'ok') console.log(`encoder: ${r.encoderCheckpoint}\ntokenizer: ${r.tokenizerPath}`);
  return s.status === 'ok';
}

export const pretrainCommand: CommandModule<object, PretrainArgs> = {
  command: 'pretrain <file>',
  describe:
    "masked-LM pretraining of the encoder on the training splits' words (the run that encoder.pretrained: mlm uses); " +
    'with --export DIR, write its encoder as a folder that encoder.pretrained: DIR loads',
  builder: (y) =>
    withRunsDir(withConfigOptions(y))
      .option('resume', {
        type: 'boolean',
        default: false,
        describe: "continue from the run folder's last checkpoint (or show its finished result); without it the run starts afresh",
      })
      .option('backend', { choices: BACKEND_CHOICES, describe: "compute backend (default: the config's `backend`)" })
      .option('export', {
        type: 'string',
        describe:
          'export the finished run this config names to folder DIR (encoder.safetensors, tokenizer.json, config.json) instead of pretraining; ' +
          'an unfinished run is an error, unless --resume is given too, which finishes it first',
      })
      .option('dtype', {
        choices: EXPORT_DTYPES,
        default: 'f16' as const,
        describe: 'precision of the exported weights (f16 halves the size; f32 keeps them exactly)',
      })
      .check((a) => {
        if (a.export === '') throw new Error('--export needs a folder');
        return true;
      }) as never,
  handler: async (args) => {
    const loaded = loadConfig(args.file, { preset: args.preset, set: args.set });
    const config = args.backend === undefined ? loaded.config : { ...loaded.config, backend: args.backend };
    const root = runsRoot(args['runs-dir']);
    // --export alone never trains: starting afresh (pretrain without --resume) would throw away the run to export.
    if (args.export === undefined || args.resume === true) {
      await initBackend(config.backend);
      const r = await pretrain(config, { resume: args.resume === true, root });
      // A diverged run is a result, not a usage error: exit 1 so scripts notice it.
      if (!report(r)) {
        process.exitCode = 1;
        return;
      }
    }
    if (args.export === undefined) return;
    const out = exportEncoder(pretrainRunDir(config, root), resolve(args.export), { dtype: args.dtype ?? 'f16' });
    const c = out.config;
    const a = c.architecture;
    console.log(`exported: ${out.dir}`);
    console.log(
      `  encoder.safetensors: ${formatBytes(out.bytes)}, ${c.weights.params} parameters in ${c.weights.tensors} tensors (${c.weights.dtype}); ` +
        `layers ${a.layers}, hidden ${a.hidden}, heads ${a.heads}, ffn ${a.ffn}, vocabulary ${a.vocabSize}`,
    );
    console.log(`  pretrained: ${c.pretraining.steps} steps, final loss ${fmt(c.pretraining.finalLoss, 4)}, key ${c.pretraining.key}`);
    console.log(`fine-tune from it with encoder.pretrained: ${out.dir} (in a config file, a relative path starts at that file's folder)`);
  },
};
