/**
 * Output the benchmarks share: numbers for a table, a table for the terminal and in markdown, the
 * machine section at the top of a docs page, and writing docs files. Tables are rows
 * of cells; the columns in `numeric` are right-aligned.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Machine } from './machine.js';

/** `n` with thousands separators and `digits` decimals; `?` when it is not a finite number. */
export function fmt(n: number, digits = 0): string {
  return Number.isFinite(n)
    ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : '?';
}

/** A fixed-width table for the terminal, columns two spaces apart. */
export function alignedTable(
  header: readonly string[],
  rows: readonly string[][],
  numeric: ReadonlySet<number>,
): string {
  const cells = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...cells.map((c) => (c[i] ?? '').length)));
  return cells
    .map((c) =>
      c
        .map((x, i) => (numeric.has(i) ? x.padStart(widths[i]!) : x.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A markdown table, as lines. */
export function markdownTable(
  header: readonly string[],
  rows: readonly string[][],
  numeric: ReadonlySet<number>,
): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (numeric.has(i) ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

/**
 * The Machine section of a docs page, as lines: a two-column table (CPU, cores, kernel and
 * Node.js, then `more`) and the command that produced the figures.
 */
export function machineSection(m: Machine, more: readonly [string, string][], command: string): string[] {
  const rows: [string, string][] = [
    ['CPU', m.cpuModel],
    ['cores', String(m.cores)],
    ['kernel', m.kernel],
    ['Node.js', m.node],
    ...more,
  ];
  return [
    '## Machine',
    '',
    '| | |',
    '|---|---|',
    ...rows.map(([k, v]) => `| ${k} | ${v} |`),
    '',
    'Command:',
    '',
    '```sh',
    command,
    '```',
  ];
}

/**
 * The line after which a docs page is written by hand: everything from it on (spot checks, recipes,
 * analyses) is kept when the page is generated again.
 */
export const kHandWrittenMarker = '<!-- Written by hand from here on: npm run bench keeps what follows. -->';

/**
 * `generated`, followed by the hand-written part of `previous` (from kHandWrittenMarker on), if
 * it has one; a generated text that carries the marker itself is returned as it is.
 */
export function keepHandWritten(generated: string, previous: string | null): string {
  if (previous === null || generated.includes(kHandWrittenMarker)) return generated;
  const at = previous.indexOf(kHandWrittenMarker);
  if (at < 0) return generated;
  return `${generated.trimEnd()}\n\n${previous.slice(at)}`;
}

/**
 * Writes each file into `root`/docs and says so on the console, naming them in the order given. A
 * markdown page keeps its hand-written part (see kHandWrittenMarker).
 */
export function writeDocs(root: string, files: Record<string, string>): void {
  const docs = join(root, 'docs');
  mkdirSync(docs, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    const path = join(docs, name);
    const previous = name.endsWith('.md') && existsSync(path) ? readFileSync(path, 'utf8') : null;
    writeFileSync(path, keepHandWritten(text, previous));
  }
  console.log(
    `wrote ${Object.keys(files)
      .map((name) => `docs/${name}`)
      .join(' and ')}`,
  );
}
