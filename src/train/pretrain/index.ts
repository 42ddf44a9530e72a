/**
 * Masked-LM pretraining of the framework's small encoder, and how fine-tuning runs find and load it.
 *
 * No pretrained encoder can be downloaded here (DESIGN.md, "Small language model"), so instead of
 * SeNER's DeBERTa the framework pretrains its own encoder, BERT-style, on the unlabeled words of the
 * training splits, and fine-tuning starts from it: `encoder.pretrained: mlm` (the run the config's
 * key names, pretrained first if needed), or the path of a run folder or of an exported encoder folder.
 *
 * One pretraining run is defined by `pretrainKey(config)`: the pretrain and tokenizer sections, the
 * encoder's architecture and the corpus (datasets and the protocol options that decide their
 * training split). It lives in `<runs>/pretrain/<short name>-<hash of the key>/`, so every
 * fine-tuning run of an experiment whose config gives the same key shares one pretraining run.
 * Attention pattern, window and LogN are not in the key: RoPE makes the same weights serve full,
 * window and arrow attention, so those stay fine-tuning-time choices.
 *
 * The loop: the corpus's documents are tokenized and cut into pieces of at most seqLen - 2 tokens
 * wrapped in [CLS] ... [SEP]; step t takes pieces t*B .. t*B+B-1 of the endless sequence made of
 * seeded permutations of the pieces (epochOrder by (seed, epoch)), masks each by whole words (rng
 * from (seed, t, i)), and takes one AdamW step on the mean MLM loss (trainer.ts trainStep). Every
 * random choice is a pure function of (seed, step), and a checkpoint restores parameters, moments
 * and counters bit for bit, so a killed run that resumes ends with the weights of an uninterrupted one.
 *
 * Files in the run folder:
 *   key.json            the key (what defines the run) and its hash
 *   tokenizer.json      the tokenizer trained on the corpus (fine-tuning uses it)
 *   log.jsonl           events: pretrain-start, step {step, loss, lr} (the loss curve), diverged, pretrain-end
 *   last.ckpt, last.optim.ckpt, pretrain-state.json
 *                       the resume checkpoint (encoder + MLM head, AdamW moments, counters), written
 *                       as one journaled unit like the trainer's (checkpoint.ts); the moments and the
 *                       state are removed once the run has finished, last.ckpt is kept
 *   encoder.ckpt        only the encoder.* parameters, written at the end
 *   pretrain.json       the summary (PretrainSummary), written last: its presence means "finished"
 *   pretrain.lock       held while a process pretrains in the folder
 *
 * An exported encoder folder (export.ts; `longner pretrain CONFIG --export DIR [--dtype f16|f32]`) is
 * what to keep, copy or commit: it needs no run folder, no key and no corpus.
 *   encoder.safetensors the encoder.* parameters (ParamStore names) in the safetensors format
 *                       (util/safetensors.ts), F16 by default (half the bytes; fine-tuning starts from
 *                       their float32 values) or F32 (the trained values exactly)
 *   tokenizer.json      the run's tokenizer, copied
 *   config.json         ExportedConfig, written last: format "longner-encoder/1", the architecture
 *                       (vocabSize, layers, hidden, heads, ffn, dropout, RoPE, pre-LN, GELU), the
 *                       sha256 of the two other files (a folder whose files do not match is refused),
 *                       and the provenance (pretrain key and what it hashes, steps, tokens, final loss,
 *                       corpus, backend, code version)
 *
 * `encoder.pretrained: PATH` takes either folder, told apart by its files (encoder.safetensors: an
 * export; encoder.ckpt: a run), relative to the config file that names it (config/load.ts). Either
 * way the folder's architecture must be the config's (encoder.layers, hidden, heads, ffn) and its
 * tokenizer replaces the one a run would train. The run id hashes such a folder by content
 * (data/config-hash.ts): moving it keeps the id, other weights or another tokenizer give a new one.
 */
export { corpusPieces, cutPieces, pretrainCorpus, type CorpusDataset, type Piece } from './corpus.js';
export {
  ENCODER_CKPT,
  ENCODER_SAFETENSORS,
  EXPORT_CONFIG,
  EXPORT_FORMAT,
  KEY_FILE,
  LAST_CKPT,
  LAST_OPTIM,
  LOCK_FILE,
  LOG_FILE,
  pretrainHash,
  pretrainKey,
  pretrainRunDir,
  pretrainTokenizerKey,
  STATE_FILE,
  SUMMARY_FILE,
  TOKENIZER_FILE,
  type PretrainKey,
} from './files.js';
export { EXPORT_DTYPES, exportEncoder, readExportedConfig, type ExportDtype, type ExportedConfig, type ExportResult } from './export.js';
export { ensurePretrained, loadPretrainedEncoder, type EnsureOptions, type PretrainedEncoder } from './load.js';
export { pretrain, pretrainEncoderConfig, type PretrainOptions, type PretrainResult } from './loop.js';
export { readSummary, type PretrainStatus, type PretrainSummary } from './state.js';
