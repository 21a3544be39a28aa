/**
 * The loop's connections by id: an open-addressing hash table that keeps only the connections
 * themselves, each found by its own `id`. A Map would keep a key, a value and a chain link per
 * entry, which for many thousands of idle connections costs several times more.
 *
 *   slots: [ c7 | null | c2 | c18 | c3 | null | ... ]     capacity a power of two
 *            ^home(c7)     ^home(c2) = home(c18) = 2: c18 probed on to the next free slot
 *
 * Invariants:
 *   - A connection sits in the first free slot at or after home(id) = id & (capacity - 1),
 *     walking forward and wrapping; no null lies between its home and its slot.
 *   - delete() shifts the entries that follow back (backward-shift deletion), so the first holds
 *     without tombstones.
 *   - size <= capacity * 3/4 after every set(); the table halves when size falls below 1/8 of
 *     capacity, never below kMinCapacity.
 *
 * Ids are the backends' connection ids (dense small numbers in their low bits), so the home slot
 * is the id's low bits. Owned by one loop; used on its thread only.
 */

/** The smallest table. */
const kMinCapacity = 16;

/** What the table keeps: anything with a numeric id. */
interface HasId {
  readonly id: number;
}

export class ConnTable<T extends HasId> {
  #slots: (T | null)[] = new Array<T | null>(kMinCapacity).fill(null);
  #mask = kMinCapacity - 1;
  #size = 0;

  /** How many connections are in the table. */
  get size(): number {
    return this.#size;
  }

  /** The connection with `id`, or undefined. */
  get(id: number): T | undefined {
    const slots = this.#slots;
    const mask = this.#mask;
    for (let i = id & mask; ; i = (i + 1) & mask) {
      const c = slots[i]!;
      if (c === null) return undefined;
      if (c.id === id) return c;
    }
  }

  /** Adds `c`, or replaces the connection with the same id. */
  set(c: T): void {
    if ((this.#size + 1) * 4 > this.#slots.length * 3) this.#resize(this.#slots.length * 2);
    const slots = this.#slots;
    const mask = this.#mask;
    const id = c.id;
    for (let i = id & mask; ; i = (i + 1) & mask) {
      const e = slots[i]!;
      if (e === null) {
        slots[i] = c;
        this.#size++;
        return;
      }
      if (e.id === id) {
        slots[i] = c;
        return;
      }
    }
  }

  /** Removes the connection with `id`; false when there is none. */
  delete(id: number): boolean {
    const slots = this.#slots;
    const mask = this.#mask;
    let i = id & mask;
    for (; ; i = (i + 1) & mask) {
      const c = slots[i]!;
      if (c === null) return false;
      if (c.id === id) break;
    }
    // Backward shift: move back each following entry whose home is not between the hole and it.
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const c = slots[j]!;
      if (c === null) break;
      const home = c.id & mask;
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      slots[i] = c;
      i = j;
    }
    slots[i] = null;
    this.#size--;
    if (this.#size * 8 < slots.length && slots.length > kMinCapacity) this.#resize(slots.length / 2);
    return true;
  }

  /** Every connection, in slot order; the table must not change while the iterator runs. */
  *values(): IterableIterator<T> {
    for (const c of this.#slots) if (c !== null) yield c;
  }

  #resize(capacity: number): void {
    const old = this.#slots;
    this.#slots = new Array<T | null>(capacity).fill(null);
    this.#mask = capacity - 1;
    this.#size = 0;
    for (const c of old) if (c !== null) this.set(c);
  }
}
