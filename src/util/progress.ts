/**
 * A one-line progress bar on stderr. On a terminal it redraws in place; elsewhere (CI logs, pipes)
 * it prints a plain line at most every `logEverySeconds`, so logs stay short but show that work moves.
 */
export interface ProgressOptions {
  label: string;
  total?: number;
  unit?: string;
  stream?: NodeJS.WriteStream;
  logEverySeconds?: number;
}

export class Progress {
  private done = 0;
  private readonly started = Date.now();
  private lastDraw = 0;
  private lastState = '';
  private info = '';
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY);
  }

  /** Advances by `n` and optionally replaces the trailing info text (e.g. "loss 0.53"). */
  tick(n = 1, info?: string): void {
    this.done += n;
    if (info !== undefined) this.info = info;
    this.draw(false);
  }

  set(done: number, info?: string): void {
    this.done = done;
    if (info !== undefined) this.info = info;
    this.draw(false);
  }

  finish(info?: string): void {
    if (info !== undefined) this.info = info;
    this.draw(true);
    if (this.tty) this.stream.write('\n');
  }

  private draw(force: boolean): void {
    const now = Date.now();
    const minGap = this.tty ? 100 : (this.opts.logEverySeconds ?? 30) * 1000;
    if (!force && now - this.lastDraw < minGap) return;
    this.lastDraw = now;
    const line = this.render(now);
    if (this.tty) this.stream.write(`\r${line}\x1b[K`);
    // A log gets each state once: finish() right after a tick would otherwise repeat it.
    else if (`${this.done} ${this.info}` !== this.lastState) this.stream.write(`${line}\n`);
    this.lastState = `${this.done} ${this.info}`;
  }

  render(now = Date.now()): string {
    const { label, total, unit = '' } = this.opts;
    const elapsed = (now - this.started) / 1000;
    const parts = [label];
    if (total !== undefined && total > 0) {
      const frac = Math.min(1, this.done / total);
      const width = 24;
      const filled = Math.round(frac * width);
      parts.push(`[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`, `${fmt(this.done)}/${fmt(total)}${unit}`);
      const eta = this.done > 0 ? (elapsed * (total - this.done)) / this.done : NaN;
      parts.push(`${formatSeconds(elapsed)} elapsed`, Number.isFinite(eta) ? `ETA ${formatSeconds(eta)}` : 'ETA ?');
    } else {
      parts.push(`${fmt(this.done)}${unit}`, `${formatSeconds(elapsed)} elapsed`);
    }
    if (this.info) parts.push(this.info);
    return parts.join(' ');
  }
}

function fmt(n: number): string {
  return Number.isInteger(n) ? n.toLocaleString('en-US') : n.toFixed(1);
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
