/*
 * Output buffers for the native engine. A fresh Float32Array costs about 0.6 ms per MiB in
 * first-touch page faults on these machines, more than the arithmetic of most kernels
 * (research/backends.md section 8), so kernels take their outputs from here and disposed tensors
 * give them back.
 *
 * Safety: an array is recycled only when no tensor uses its buffer any more. The stock cpu kernels
 * this backend inherits can return views (`subarray`) into an input, so users are counted per
 * ArrayBuffer, views included, and a view keeps its parent's buffer out of the pool. Arrays that
 * leave the backend (readSync) are copies, so nothing outside can see a recycled buffer.
 *
 * Eviction: free buffers never exceed the cap, nor twice the most bytes ever in use at once (the
 * high-water mark: one step can reuse at most that much; the second half keeps the lengths of the
 * last few different steps, such as inference on documents of other lengths). The free lists are kept
 * in order of last use per length, and a buffer that would pass the limit evicts the least recently
 * used lengths first. Segment lengths vary, so a pool that kept whatever came first filled with
 * lengths that never came back and dropped the buffers that would be reused. Measured on 60 steps of
 * SeNER on SciREX at the cpu preset (0.44 GiB training step, one thread, 6 GiB cap; docs/native-engine.md):
 * resident set 7.1 GB before, 2.0 GB with this limit, the run no slower and the same F1.
 */
export interface PoolStats {
  /** Bytes in free lists, ready for reuse. */
  freeBytes: number;
  /** Bytes of buffers held by live tensors (every buffer counted once, pooled or not). */
  liveBytes: number;
  /** Bytes handed out by take() that no tensor holds yet (a kernel's outputs while it runs). */
  outstandingBytes: number;
  peakLiveBytes: number;
  /** Buffers served from a free list vs freshly allocated. */
  reused: number;
  allocated: number;
}

export class BufferPool {
  /** Free arrays per length; the Map's order is the order of last use (least recent first). */
  private readonly free = new Map<number, Float32Array[]>();
  /** Buffers that came from this pool, with their array's length. */
  private readonly owned = new WeakMap<ArrayBufferLike, number>();
  /** Every buffer a live tensor uses, with the number of tensor data entries using it. */
  private readonly users = new Map<ArrayBufferLike, number>();
  private stats: PoolStats = { freeBytes: 0, liveBytes: 0, outstandingBytes: 0, peakLiveBytes: 0, reused: 0, allocated: 0 };
  /** The most bytes ever in use at once, by tensors or by kernels (live + outstanding; never reset). */
  private highWaterBytes = 0;

  constructor(private capBytes: number) {}

  /** An array of n floats with unspecified contents: the caller writes every element. */
  take(n: number): Float32Array {
    const list = this.free.get(n);
    const hit = list?.pop();
    if (hit !== undefined) {
      this.touch(n, list!);
      this.stats.freeBytes -= hit.byteLength;
      this.stats.outstandingBytes += hit.byteLength;
      this.stats.reused++;
      this.markHighWater();
      return hit;
    }
    const fresh = new Float32Array(n);
    this.owned.set(fresh.buffer, n);
    this.stats.outstandingBytes += fresh.byteLength;
    this.stats.allocated++;
    this.markHighWater();
    return fresh;
  }

  /** A tensor now uses `values`. */
  retain(values: unknown): void {
    if (!ArrayBuffer.isView(values)) return;
    const buffer = values.buffer;
    const count = this.users.get(buffer) ?? 0;
    this.users.set(buffer, count + 1);
    if (count === 0) {
      if (this.owned.has(buffer)) this.stats.outstandingBytes = Math.max(0, this.stats.outstandingBytes - buffer.byteLength);
      this.stats.liveBytes += buffer.byteLength;
      if (this.stats.liveBytes > this.stats.peakLiveBytes) this.stats.peakLiveBytes = this.stats.liveBytes;
      this.markHighWater();
    }
  }

  /** A tensor stopped using `values`; its buffer returns to the pool when it was the last user. */
  release(values: unknown): void {
    if (!ArrayBuffer.isView(values)) return;
    const buffer = values.buffer;
    const count = this.users.get(buffer);
    if (count === undefined) return;
    if (count > 1) {
      this.users.set(buffer, count - 1);
      return;
    }
    this.users.delete(buffer);
    this.stats.liveBytes -= buffer.byteLength;
    this.toFreeList(buffer);
  }

  /** Gives back a scratch array that was never wrapped as a tensor. */
  recycle(values: Float32Array): void {
    if (this.users.has(values.buffer)) return;
    if (this.owned.has(values.buffer)) this.stats.outstandingBytes = Math.max(0, this.stats.outstandingBytes - values.buffer.byteLength);
    this.toFreeList(values.buffer);
  }

  private toFreeList(buffer: ArrayBufferLike): void {
    const n = this.owned.get(buffer);
    const limit = Math.min(this.capBytes, 2 * this.highWaterBytes);
    if (n === undefined || buffer.byteLength > limit) return;
    this.trim(limit - buffer.byteLength);
    const list = this.free.get(n) ?? [];
    list.push(new Float32Array(buffer, 0, n));
    this.touch(n, list);
    this.stats.freeBytes += buffer.byteLength;
  }

  private markHighWater(): void {
    this.highWaterBytes = Math.max(this.highWaterBytes, this.stats.liveBytes + this.stats.outstandingBytes);
  }

  /** Marks length n as the most recently used (re-inserting moves it to the end of the Map's order). */
  private touch(n: number, list: Float32Array[]): void {
    this.free.delete(n);
    if (list.length > 0) this.free.set(n, list);
  }

  /** True when `values` lives in a buffer this pool may recycle. */
  isPooled(values: unknown): boolean {
    return ArrayBuffer.isView(values) && this.owned.has(values.buffer);
  }

  /** Drops free buffers, least recently used lengths first, until at most `bytes` remain free (0 empties the free lists). */
  trim(bytes = 0): void {
    for (const [n, list] of this.free) {
      if (this.stats.freeBytes <= bytes) return;
      while (this.stats.freeBytes > bytes && list.length > 0) {
        const dropped = list.pop()!;
        this.stats.freeBytes -= dropped.byteLength;
      }
      if (list.length === 0) this.free.delete(n);
    }
  }

  setCap(bytes: number): void {
    this.capBytes = bytes;
    this.trim(bytes);
  }

  get cap(): number {
    return this.capBytes;
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }

  resetPeak(): void {
    this.stats.peakLiveBytes = this.stats.liveBytes;
  }
}
