/**
 * The loop's connection table against a Map as the model: any sequence of adds and removes,
 * with ids that collide on their low bits (as native ids of reused slots do) and ids far apart
 * (as generations make them), leaves the same connections findable, the same size, and the same
 * set of values; removing an id that is not there changes nothing; the table grows and shrinks
 * through it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ConnTable } from '../src/loop/conn-table.js';

interface Entry {
  readonly id: number;
  readonly tag: number;
}

/** Ids built as the native core builds them, (generation << 20) | slot, with few slots so that homes collide. */
const idArb = fc
  .tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 20 }))
  .map(([gen, slot]) => ((gen << 20) | slot) >>> 0);

type Op = { kind: 'set'; id: number; tag: number } | { kind: 'delete'; id: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('set' as const), id: idArb, tag: fc.nat() }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('delete' as const), id: idArb }), weight: 2 },
);

test('the table agrees with a Map through any adds and removes', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 400 }), (ops) => {
      const table = new ConnTable<Entry>();
      const model = new Map<number, Entry>();
      for (const op of ops) {
        if (op.kind === 'set') {
          const e = { id: op.id, tag: op.tag };
          table.set(e);
          model.set(op.id, e);
        } else {
          assert.equal(table.delete(op.id), model.delete(op.id), `delete(${op.id})`);
        }
        assert.equal(table.size, model.size);
      }
      for (const [id, e] of model) assert.equal(table.get(id), e, `get(${id})`);
      for (let slot = 0; slot <= 20; slot++) {
        const id = ((7 << 20) | slot) >>> 0;
        assert.equal(table.get(id), undefined, 'an id never added is not found');
      }
      const values = [...table.values()].sort((a, b) => a.id - b.id);
      assert.deepEqual(
        values,
        [...model.values()].sort((a, b) => a.id - b.id),
      );
    }),
    { numRuns: 1000 },
  );
});

test('removing an id keeps the ids that share its home slot findable', () => {
  const table = new ConnTable<Entry>();
  const ids = [3, (1 << 20) | 3, (2 << 20) | 3, 4];
  for (const id of ids) table.set({ id, tag: id });
  assert.ok(table.delete(ids[0]!));
  for (const id of ids.slice(1)) assert.equal(table.get(id)?.tag, id, `get(${id}) after the first left`);
  assert.ok(table.delete(ids[2]!));
  for (const id of [ids[1]!, ids[3]!]) assert.equal(table.get(id)?.tag, id, `get(${id}) after the third left`);
  assert.equal(table.size, 2);
});

test('thousands of sequential ids: all found, then all removed, and the table is empty', () => {
  const table = new ConnTable<Entry>();
  for (let id = 1; id <= 20_000; id++) table.set({ id, tag: id });
  assert.equal(table.size, 20_000);
  for (let id = 1; id <= 20_000; id++) assert.equal(table.get(id)?.tag, id);
  for (let id = 1; id <= 20_000; id += 2) assert.ok(table.delete(id));
  assert.equal(table.size, 10_000);
  for (let id = 1; id <= 20_000; id++) assert.equal(table.get(id)?.tag, id % 2 === 0 ? id : undefined);
  for (let id = 2; id <= 20_000; id += 2) assert.ok(table.delete(id));
  assert.equal(table.size, 0);
  assert.deepEqual([...table.values()], []);
  assert.equal(table.delete(2), false);
});
