/**
 * docs/api.md cannot drift from the code: every public member of Conn, Events, Server and
 * ServeOptions (read from the emitted .d.ts files) and every error class exported by the package
 * appears in the reference.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as gevent from '../src/index.js';

const root = new URL('../../', import.meta.url);
const doc = readFileSync(new URL('docs/api.md', root), 'utf8');

/** The member names declared in the body of `export declare class|interface <name>` in a .d.ts file. */
function members(dts: string, kind: 'class' | 'interface', name: string): string[] {
  const text = readFileSync(new URL(dts, root), 'utf8');
  const start = text.indexOf(`export ${kind === 'class' ? 'declare class' : 'interface'} ${name} `);
  assert.ok(start >= 0, `${name} in ${dts}`);
  const body = text.slice(text.indexOf('{', start) + 1, text.indexOf('\n}', start));
  const out = new Set<string>();
  for (const line of body.split('\n')) {
    const m = /^ {4}(?:readonly |get |set )?([A-Za-z_]\w*)\??[(:<]/.exec(line);
    if (m) out.add(m[1]!);
  }
  return [...out];
}

const cases: [string, 'class' | 'interface', string, string][] = [
  ['dist/src/conn-types.d.ts', 'interface', 'Conn', 'Conn'],
  ['dist/src/conn-types.d.ts', 'interface', 'DatagramConn', 'DatagramConn'],
  ['dist/src/events.d.ts', 'interface', 'Events', 'Events'],
  ['dist/src/events.d.ts', 'interface', 'Server', 'Server'],
  ['dist/src/serve.d.ts', 'interface', 'ServeOptions', 'ServeOptions'],
];

for (const [dts, kind, name, heading] of cases) {
  test(`docs/api.md documents every member of ${name}`, () => {
    const names = members(dts, kind, name);
    assert.ok(names.length >= 5, `found ${names.length} members of ${name}`);
    const missing = names.filter((m) => !doc.includes(`${heading}.${m}`) && !new RegExp(`\\b${m}\\b[?(:]`).test(doc));
    assert.deepEqual(missing, [], `${name} members missing from docs/api.md`);
  });
}

test('docs/api.md lists every exported error class and its code in the error table', () => {
  const classes = Object.entries(gevent).filter(
    ([, v]) => typeof v === 'function' && v.prototype instanceof gevent.GeventError,
  );
  assert.ok(classes.length >= 10);
  for (const [name] of classes)
    assert.match(doc, new RegExp(`\\| \`${name}\` \\| \`ERR_GEVENT_`), `${name} in the error table`);
});
