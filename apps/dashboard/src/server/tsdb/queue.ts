/**
 * The remote-write queue: a fixed ring of points (series id, value, timestamp) in typed arrays, so queueing
 * a point allocates nothing and the hub's memory for it is bounded at start (20 bytes a point). `push`
 * never blocks: when the ring is full the point is refused and counted (the caller logs the reason).
 */
export class PointQueue {
  readonly ids: Int32Array;
  readonly values: Float64Array;
  readonly times: Float64Array;
  private head = 0;
  private len = 0;

  constructor(readonly capacity: number) {
    this.ids = new Int32Array(capacity);
    this.values = new Float64Array(capacity);
    this.times = new Float64Array(capacity);
  }

  get length(): number {
    return this.len;
  }

  get start(): number {
    return this.head;
  }

  /** false: the queue is full and the point was not taken. */
  push(id: number, value: number, ts: number): boolean {
    if (this.len === this.capacity) return false;
    const i = (this.head + this.len) % this.capacity;
    this.ids[i] = id;
    this.values[i] = value;
    this.times[i] = ts;
    this.len++;
    return true;
  }

  /** Drops the `n` oldest points (after they were delivered, or given up on). */
  shift(n: number): void {
    const k = Math.min(n, this.len);
    this.head = (this.head + k) % this.capacity;
    this.len -= k;
  }
}
