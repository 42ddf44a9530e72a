import type { CommandModule } from 'yargs';
import { BACKEND_CHOICES, initBackend, type BackendChoice } from '../backend/index.js';
import { loadConfig } from '../config/load.js';
import { pretrain } from '../train/pretrain/index.js';
import { runsRoot } from '../util/paths.js';
import { withConfigOptions, withRunsDir, type ConfigArgs, type RunsDirArgs } from './config.js';

interface PretrainArgs extends ConfigArgs, RunsDirArgs {
  resume?: boolean;
  backend?: BackendChoice;
}

function fmt(x: number | null, digits: number): string {
  return x === null ? 'n/a' : x.toFixed(digits);
}

export const pretrainCommand: CommandModule<object, PretrainArgs> = {
  command: 'pretrain <file>',
  describe: "masked-LM pretraining of the encoder on the training splits' words (the run that encoder.pretrained: mlm uses)",
  builder: (y) =>
    withRunsDir(withConfigOptions(y))
      .option('resume', {
        type: 'boolean',
        default: false,
        describe: "continue from the run folder's last checkpoint (or show its finished result); without it the run starts afresh",
      })
      .option('backend', { choices: BACKEND_CHOICES, describe: "compute backend (default: the config's `backend`)" }) as never,
  handler: async (args) => {
    const loaded = loadConfig(args.file, { preset: args.preset, set: args.set });
    const config = args.backend === undefined ? loaded.config : { ...loaded.config, backend: args.backend };
    await initBackend(config.backend);
    const r = await pretrain(config, { resume: args.resume === true, root: runsRoot(args['runs-dir']) });
    const s = r.summary;
    console.log(`run folder: ${r.dir}`);
    if (s === null) {
      console.log(`status: ${r.status}`);
      process.exitCode = 1;
      return;
    }
    console.log(`status: ${s.status}${s.reason ? ` (${s.reason})` : ''}`);
    // A diverged run is a result, not a usage error: exit 1 so scripts notice it.
    if (s.status !== 'ok') process.exitCode = 1;
    console.log(`steps: ${s.steps}, corpus: ${s.corpus.documents} documents, ${s.corpus.pieces} pieces, ${s.corpus.tokens} tokens`);
    console.log(`final loss: ${fmt(s.finalLoss, 4)}`);
    console.log(`speed: ${fmt(s.tokensPerSecond, 0)} tokens/s, ${fmt(s.msPerStep, 1)} ms/step on ${s.backend}; wall ${s.wallSeconds.toFixed(0)} s`);
    if (s.status === 'ok') console.log(`encoder: ${r.encoderCheckpoint}\ntokenizer: ${r.tokenizerPath}`);
  },
};
