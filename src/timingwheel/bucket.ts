/**
 * The timing wheel's storage: a timer entry, the bucket (slot) that holds a list of them, and the
 * delay queue, a min-heap of the non-empty buckets by expiration. See core.ts for how
 * the wheel files timers into buckets and drains the queue.
 */
import { TimerState, type Scheduler, type Timer } from './types.js';

/** What a timer entry needs of the wheel that owns it (the core implements it). */
export interface EntryOwner {
  /** `expiration` (ms) rounded up to whole level-0 ticks. */
  deadlineOf(expiration: number): number;
  /** Unlinks a pending entry; true if it was pending. */
  cancel(entry: TimerEntry): boolean;
}

/** One timer. Lives in one bucket's list at a time; the wheel owns it, the user holds it as a Timer. */
export class TimerEntry implements Timer {
  expiration: number;
  /** expiration rounded up to whole level-0 ticks. */
  deadline: number;
  /** Insertion order, the tie-break between timers with equal expiration. */
  seq = 0;
  state = TimerState.Pending;
  bucket: Bucket | null = null;
  prev: TimerEntry | null = null;
  next: TimerEntry | null = null;

  constructor(
    readonly core: EntryOwner,
    readonly fn: () => void,
    expiration: number,
    /** Repeat period in ms for scheduleFunc(number); 0 otherwise. */
    readonly periodMs: number,
    readonly scheduler: Scheduler | null,
  ) {
    this.expiration = expiration;
    this.deadline = core.deadlineOf(expiration);
  }

  stop(): boolean {
    return this.core.cancel(this);
  }
}

/** A slot: an intrusive doubly linked list of timers, and the tick at which it is due. */
export class Bucket {
  /** Due tick; meaningful while the bucket is queued. */
  expiration = 0;
  /** Position in the delay queue, -1 when not queued. */
  heapIndex = -1;
  count = 0;
  head: TimerEntry | null = null;
  tail: TimerEntry | null = null;

  push(entry: TimerEntry): void {
    entry.bucket = this;
    entry.prev = this.tail;
    entry.next = null;
    if (this.tail === null) this.head = entry;
    else this.tail.next = entry;
    this.tail = entry;
    this.count++;
  }

  unlink(entry: TimerEntry): void {
    if (entry.prev === null) this.head = entry.next;
    else entry.prev.next = entry.next;
    if (entry.next === null) this.tail = entry.prev;
    else entry.next.prev = entry.prev;
    entry.prev = entry.next = entry.bucket = null;
    this.count--;
  }

  /** Empties the bucket and returns its old head; the entries keep their `next` links. */
  detach(): TimerEntry | null {
    const head = this.head;
    this.head = this.tail = null;
    this.count = 0;
    return head;
  }
}

/** Binary min-heap of buckets keyed by expiration; each bucket knows its index, so removal is O(log n). */
export class DelayQueue {
  readonly heap: Bucket[] = [];

  get length(): number {
    return this.heap.length;
  }

  peek(): Bucket {
    return this.heap[0]!;
  }

  push(bucket: Bucket): void {
    bucket.heapIndex = this.heap.length;
    this.heap.push(bucket);
    this.#up(bucket.heapIndex);
  }

  pop(): Bucket {
    const top = this.heap[0]!;
    this.remove(top);
    return top;
  }

  remove(bucket: Bucket): void {
    const heap = this.heap;
    const i = bucket.heapIndex;
    const last = heap.pop()!;
    bucket.heapIndex = -1;
    if (last === bucket) return;
    heap[i] = last;
    last.heapIndex = i;
    this.#down(i);
    this.#up(last.heapIndex);
  }

  clear(): void {
    for (const bucket of this.heap) bucket.heapIndex = -1;
    this.heap.length = 0;
  }

  #up(i: number): void {
    const heap = this.heap;
    const item = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (p.expiration <= item.expiration) break;
      heap[i] = p;
      p.heapIndex = i;
      i = parent;
    }
    heap[i] = item;
    item.heapIndex = i;
  }

  #down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const item = heap[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && heap[child + 1]!.expiration < heap[child]!.expiration) child++;
      const c = heap[child]!;
      if (c.expiration >= item.expiration) break;
      heap[i] = c;
      c.heapIndex = i;
      i = child;
    }
    heap[i] = item;
    item.heapIndex = i;
  }
}
