/**
 * An error caused by the user's input (a file, a config key, a command-line flag).
 * The CLI prints `message` on one line, without a stack trace, and exits with code 2;
 * any other error is a bug and keeps its stack.
 */
export class LongnerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LongnerError';
  }
}
