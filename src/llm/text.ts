/** Word windows of long documents and their rendering as plain text for prompts. */

export interface WordWindow {
  /** Word offsets in the document, end exclusive. */
  start: number;
  end: number;
}

/**
 * Consecutive windows of at most `size` words, `stride` words apart, the last one ending at the
 * document's end; a document of n <= size words is one window. An empty document has none.
 */
export function wordWindows(n: number, size: number, stride: number): WordWindow[] {
  if (!Number.isInteger(size) || size < 1 || !Number.isInteger(stride) || stride < 1 || stride > size) {
    throw new RangeError(`window ${size} / stride ${stride}: need integers with 1 <= stride <= window`);
  }
  const out: WordWindow[] = [];
  for (let start = 0; start < n; start += stride) {
    const end = Math.min(n, start + size);
    out.push({ start, end });
    if (end >= n) break;
  }
  return out;
}

const NO_SPACE_BEFORE = /^(?:[.,;:!?)\]}%]|'s|n't|'re|'ve|'ll|'d|'m)$/;
const NO_SPACE_AFTER = /^[([{]$/;

/**
 * Words joined as readable text: no space before closing punctuation or after an opening bracket, so a
 * model sees "Beijing, China (PRC)" rather than "Beijing , China ( PRC )". Alignment ignores whitespace,
 * so this rendering never changes which offsets an answer maps to.
 */
export function renderWords(words: readonly string[]): string {
  let out = '';
  words.forEach((w, i) => {
    if (i > 0 && !NO_SPACE_BEFORE.test(w) && !NO_SPACE_AFTER.test(words[i - 1]!)) out += ' ';
    out += w;
  });
  return out;
}
