/**
 * Core data types. Offsets are word indices with `end` exclusive, everywhere in the code base;
 * character offsets appear only at the edges (LLM answers, exports).
 */
export interface Entity {
  start: number;
  end: number;
  type: string;
}

export interface Document {
  id: string;
  words: string[];
  entities: Entity[];
}

/** A predicted entity: an Entity with the model's confidence. */
export interface ScoredEntity extends Entity {
  score: number;
}

/** The splits a method sees under the evaluation protocol (research/datasets.md). */
export type ProtocolSplit = 'train' | 'validation' | 'test';
