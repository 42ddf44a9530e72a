/** Bounded concurrency for independent async jobs, shared by the experiment runner and the memory sweep. */

/** Runs `work` on every item, at most `concurrency` at a time (at least one), in item order. */
export async function pool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
}
