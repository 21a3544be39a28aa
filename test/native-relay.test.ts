/**
 * Relays in the native core, tested in C (test/c/relay.c, linked with native/*.c without
 * Node-API): a relayed connection's bytes reach its destination byte-exact with no DATA record,
 * backpressure holds the source (no EPOLLIN) while the destination's queue is past the mark and
 * keeps that queue within mark + read budget, RELAY to 0 and a destination that closes, resets or
 * ends give the source's input back to JS as DATA, a source may relay to itself, a second source
 * replaces the first, RELAYED carries the byte counts right before CLOSE, a half-close is
 * reported as END after everything before it was relayed, closing either side of a held relay
 * releases the other, and A <-> B relays both ways at once. Skipped when gcc is not installed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CProgram, cProgramsSkip } from './c-programs.js';

describe('native core: relays', { skip: cProgramsSkip }, () => {
  let program: CProgram;
  before(() => (program = CProgram.build('relay')));
  after(() => program.dispose());

  it('moves bytes between connections, holds, stops, replaces and counts as relay.c says', () => {
    const stdout = program.passes(120000);
    for (const line of [
      /relay: 1 MiB from A arrived at B byte-exact, no DATA for A/,
      /counts: RELAYED A rx 1048576 tx 0, B rx 0 tx 1048576, each right before its CLOSE/,
      /backpressure: A held with B's queue at most \d+ \(hw 262144 \+ budget 65536\), 32 MiB in order, hold lifted/,
      /stop: RELAY to 0, later input arrives as DATA/,
      /destination closing: the relay stops, A's input arrives as DATA/,
      /self-relay: 4 MiB echoed/,
      /replace: a second source takes the destination, the first's input arrives as DATA/,
      /half-close: END for A after all \d+ bytes before the FIN reached B/,
      /held: closing either side of a held relay releases the other/,
      /both ways: 8 MiB each way at once, RELAYED rx = tx on both/,
      /all relay cases passed/,
    ]) {
      assert.match(stdout, line);
    }
  });
});
