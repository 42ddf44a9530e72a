/**
 * brat standoff (https://brat.nlplab.org/standoff.html), for annotation tools: one `<id>.txt` per
 * document (its words joined by single spaces) and one `<id>.ann` with a text-bound annotation
 * `T<n>\t<type> <char start> <char end>\t<text>` per entity, its score (predictions) as an
 * `AnnotatorNotes` line. Word offsets map to character offsets through the single spaces, so reading
 * the folder back gives the same documents, as long as no word holds a space (checked when writing).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { LongnerError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { sha256 } from '../util/hash.js';
import type { Document, Entity, ScoredEntity } from './types.js';

/** A file name for a document id: the id itself when it is safe, else a safe form plus a short hash (ids may hold '/'). */
export function bratFileStem(id: string): string {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(id) ? id : `${id.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80)}-${sha256(id).slice(0, 8)}`;
}

/** Character offsets of each word in the words joined by single spaces. */
function wordStarts(words: readonly string[]): number[] {
  const starts: number[] = [];
  let at = 0;
  for (const w of words) {
    starts.push(at);
    at += w.length + 1;
  }
  return starts;
}

export function writeBrat(dir: string, docs: readonly Document[]): void {
  const stems = new Set<string>();
  for (const doc of docs) {
    const spaced = doc.words.findIndex((w) => w.includes(' '));
    if (spaced >= 0)
      throw new LongnerError(
        `document ${doc.id}: word ${spaced} ${JSON.stringify(doc.words[spaced])} holds a space, which brat's text cannot keep apart; expected words without spaces`,
      );
    const badType = doc.entities.find((e) => /\s/.test(e.type));
    if (badType)
      throw new LongnerError(`document ${doc.id}: entity type ${JSON.stringify(badType.type)} holds white space, which brat's .ann lines cannot hold`);
    const stem = bratFileStem(doc.id);
    if (stems.has(stem)) throw new LongnerError(`document ${doc.id}: its file name ${stem} is taken by another document; expected unique document ids`);
    stems.add(stem);
    const text = doc.words.join(' ');
    const starts = wordStarts(doc.words);
    const lines: string[] = [];
    doc.entities.forEach((e, i) => {
      const from = starts[e.start]!;
      const to = starts[e.end - 1]! + doc.words[e.end - 1]!.length;
      lines.push(`T${i + 1}\t${e.type} ${from} ${to}\t${text.slice(from, to).replace(/[\r\n\t]/g, ' ')}`);
      const score = (e as Partial<ScoredEntity>).score;
      if (typeof score === 'number') lines.push(`#${i + 1}\tAnnotatorNotes T${i + 1}\tscore=${score}`);
    });
    writeFileAtomic(join(dir, `${stem}.txt`), text);
    writeFileAtomic(join(dir, `${stem}.ann`), lines.length === 0 ? '' : `${lines.join('\n')}\n`);
  }
}

/** Reads a folder written by writeBrat (documents sorted by file name; ids are the file stems). */
export function readBrat(dir: string): Document[] {
  if (!existsSync(dir)) throw new LongnerError(`${dir}: no such folder`);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .map((file) => {
      const id = basename(file, '.txt');
      const text = readFileSync(join(dir, file), 'utf8');
      const words = text === '' ? [] : text.split(' ');
      const byChar = new Map<number, number>();
      const endByChar = new Map<number, number>();
      wordStarts(words).forEach((s, i) => {
        byChar.set(s, i);
        endByChar.set(s + words[i]!.length, i + 1);
      });
      const annFile = join(dir, `${id}.ann`);
      const entities: Entity[] = [];
      const byTag = new Map<string, Entity>();
      const lines = existsSync(annFile) ? readFileSync(annFile, 'utf8').split('\n') : [];
      lines.forEach((line, n) => {
        if (line.trim() === '') return;
        const where = `${annFile}:${n + 1}`;
        const cols = line.split('\t');
        if (cols[0]!.startsWith('T')) {
          const m = /^(\S+) (\d+) (\d+)$/.exec(cols[1] ?? '');
          const start = m ? byChar.get(Number(m[2])) : undefined;
          const end = m ? endByChar.get(Number(m[3])) : undefined;
          if (!m || start === undefined || end === undefined) {
            throw new LongnerError(`${where}: expected "T<n>\\t<type> <start> <end>\\t<text>" with offsets on word boundaries, got ${JSON.stringify(line)}`);
          }
          const entity: Entity = { start, end, type: m[1]! };
          byTag.set(cols[0]!, entity);
          entities.push(entity);
        } else if (cols[0]!.startsWith('#')) {
          const m = /^AnnotatorNotes (\S+)$/.exec(cols[1] ?? '');
          const score = /^score=(.+)$/.exec(cols[2] ?? '');
          const target = m ? byTag.get(m[1]!) : undefined;
          if (target && score) (target as ScoredEntity).score = Number(score[1]);
        }
      });
      return { id, words, entities };
    });
}
