/**
 * `npm run bench` rewrites docs/benchmarks.md from its results; the part of the page after the
 * hand-written marker (spot checks, recipes, analyses) must survive that, byte for byte.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { kHandWrittenMarker, keepHandWritten, writeDocs } from '../bench/lib/output.js';

test('a generated page keeps the hand-written part of the page it replaces', () => {
  const tail = `${kHandWrittenMarker}\n\n## Spot check\n\nmeasured by hand: 1,234 msgs/s\n`;
  const old = `# Benchmarks\n\nold table\n\n${tail}`;
  assert.equal(keepHandWritten('# Benchmarks\n\nnew table\n', old), `# Benchmarks\n\nnew table\n\n${tail}`);
  // No marker in the old page: the generated page alone; no old page at all: the same.
  assert.equal(keepHandWritten('new\n', 'old\n'), 'new\n');
  assert.equal(keepHandWritten('new\n', null), 'new\n');
  // A generated page that has the marker already is not given a second tail.
  const own = `new\n\n${kHandWrittenMarker}\nmine\n`;
  assert.equal(keepHandWritten(own, old), own);
});

test('writeDocs keeps the hand-written tail of a markdown page and writes other files as given', () => {
  const root = mkdtempSync(join(tmpdir(), 'gevent-docs-'));
  try {
    mkdirSync(join(root, 'docs'));
    const tail = `${kHandWrittenMarker}\n\nkept\n`;
    writeFileSync(join(root, 'docs', 'benchmarks.md'), `old\n\n${tail}`);
    writeFileSync(join(root, 'docs', 'chart.svg'), `<svg>${kHandWrittenMarker}</svg>`);
    writeDocs(root, { 'benchmarks.md': 'fresh\n', 'chart.svg': '<svg/>' });
    assert.equal(readFileSync(join(root, 'docs', 'benchmarks.md'), 'utf8'), `fresh\n\n${tail}`);
    assert.equal(readFileSync(join(root, 'docs', 'chart.svg'), 'utf8'), '<svg/>');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
