import test from 'ava';
import { Writable } from 'node:stream';
import { Progress } from '../../src/util/progress.js';

/** A non-terminal stream that keeps what was written. */
function sink(): { stream: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  return { stream, text: () => text };
}

test('in a log the progress prints one plain line per state: a finish right after the last tick is not repeated', (t) => {
  const out = sink();
  const p = new Progress({ label: 'runs', total: 2, stream: out.stream, logEverySeconds: 0 });
  p.tick();
  p.tick();
  p.finish();
  const lines = out.text().trimEnd().split('\n');
  t.is(lines.length, 2);
  t.regex(lines[0]!, /^runs \[#+\.+\] 1\/2 /);
  t.regex(lines[1]!, /^runs \[#{24}\] 2\/2 /);
  t.false(out.text().includes('\r'));
});

test('finish with new info prints the final line', (t) => {
  const out = sink();
  const p = new Progress({ label: 'steps', total: 1, stream: out.stream, logEverySeconds: 0 });
  p.tick();
  p.finish('done');
  const lines = out.text().trimEnd().split('\n');
  t.is(lines.length, 2);
  t.regex(lines[1]!, /done$/);
});
