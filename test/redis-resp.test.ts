/**
 * The Redis example's protocol layer without sockets: the RESP2 and inline parser (commands, the
 * protocol errors as Redis words them, limits, commands split across reads), the reply encoders,
 * and KEYS glob matching. A fast-check property checks that any command stream, split at random
 * points, parses into the same commands as the whole stream.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { RingBuffer } from '../src/index.js';
import { globMatch } from '../examples/redis/glob.js';
import { ReplyWriter } from '../examples/redis/reply.js';
import {
  kMaxBulkBytes,
  parseInt64,
  readCommands,
  RespParser,
  type Args,
  type ReadResult,
} from '../examples/redis/resp.js';

/** Feeds `chunks` one by one, as a connection's reads, and collects every command and the final result. */
function feed(chunks: (string | Buffer)[], capacity = 0): { commands: string[][]; result: ReadResult; error: string } {
  const input = new RingBuffer(capacity);
  const parser = new RespParser();
  const commands: string[][] = [];
  let result: ReadResult = 'drained';
  const visit = (args: Args): boolean => {
    const cmd: string[] = [];
    for (let i = 0; i < args.argc; i++) cmd.push(args.str(i));
    commands.push(cmd);
    return true;
  };
  for (const chunk of chunks) {
    input.write(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
    result = readCommands(input, parser, visit);
    if (result !== 'drained') break;
  }
  return { commands, result, error: parser.error };
}

function multibulk(args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join('')}`;
}

/** An argument as an inline command writes it: bare when it is a plain word, else quoted with \xHH escapes. */
function inlineArg(a: string): string {
  if (/^[\w:-]+$/.test(a)) return a;
  return `"${[...a].map((ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`).join('')}"`;
}

describe('redis RESP parser', () => {
  test('multibulk commands, pipelined in one read, come out in order with binary-safe arguments', () => {
    const bin = '\x00\r\n\xff';
    const r = feed([multibulk(['SET', 'k', bin]) + multibulk(['GET', 'k']) + multibulk(['PING'])]);
    assert.equal(r.result, 'drained');
    assert.deepEqual(r.commands, [['SET', 'k', bin], ['GET', 'k'], ['PING']]);
  });

  test('inline commands: blanks split, quotes group, escapes decode, empty lines and *0 / *-1 are skipped', () => {
    const r = feed([
      'PING\r\n\r\n\n  SET  a  "hello world"\r\n',
      "ECHO 'it\\'s' \"\\x41\\n\\t\\q\"\n",
      '*0\r\n*-1\r\nECHO \'\' ""\r\n',
    ]);
    assert.equal(r.result, 'drained');
    assert.deepEqual(r.commands, [['PING'], ['SET', 'a', 'hello world'], ['ECHO', "it's", 'A\n\tq'], ['ECHO', '', '']]);
  });

  test('a quote inside a word opens quoting, and a NUL byte ends an inline line as in Redis', () => {
    assert.deepEqual(feed(['SET a"b c"d\r\n']).error, 'unbalanced quotes in request');
    assert.deepEqual(feed(['SET a"b c" d\r\n']).commands, [['SET', 'ab c', 'd']]);
    assert.deepEqual(feed(['GET a\x00 ignored\r\n']).commands, [['GET', 'a']]);
  });

  test('each protocol error is reported with the text Redis uses, after the commands before it', () => {
    const cases: [string, string][] = [
      ['*abc\r\n', 'invalid multibulk length'],
      ['*01\r\n', 'invalid multibulk length'],
      ['*+1\r\n', 'invalid multibulk length'],
      ['*1 \r\n', 'invalid multibulk length'],
      ['*2147483648\r\n', 'invalid multibulk length'],
      ['*9223372036854775808\r\n', 'invalid multibulk length'],
      ['*1\r\n$abc\r\n', 'invalid bulk length'],
      ['*1\r\n$-1\r\n', 'invalid bulk length'],
      ['*1\r\n$04\r\n', 'invalid bulk length'],
      [`*1\r\n$${kMaxBulkBytes + 1}\r\n`, 'invalid bulk length'],
      ['*3\r\n:1\r\n', "expected '$', got ':'"],
      ['SET a "b\r\n', 'unbalanced quotes in request'],
      ["SET a 'b'c\r\n", 'unbalanced quotes in request'],
      ['x'.repeat(64 * 1024 + 1), 'too big inline request'],
      ['*' + '1'.repeat(64 * 1024 + 1), 'too big mbulk count string'],
      ['*1\r\n$' + '1'.repeat(64 * 1024 + 1), 'too big bulk count string'],
    ];
    for (const [input, message] of cases) {
      const r = feed([multibulk(['PING']) + input]);
      assert.equal(r.result, 'error', JSON.stringify(input.slice(0, 40)));
      assert.equal(r.error, message, JSON.stringify(input.slice(0, 40)));
      assert.deepEqual(r.commands, [['PING']]);
    }
  });

  test('limits that are not exceeded wait for more input instead of failing', () => {
    assert.deepEqual(feed([`*1\r\n$${kMaxBulkBytes}\r\n`]), { commands: [], result: 'drained', error: '' });
    assert.deepEqual(feed([`*${1024 * 1024}\r\n`]), { commands: [], result: 'drained', error: '' });
    assert.deepEqual(
      feed([`*${1024 * 1024 + 1}\r\n`]),
      { commands: [], result: 'drained', error: '' },
      'Redis 7 without requirepass takes it',
    );
    assert.deepEqual(
      feed(['*2147483647\r\n$4\r\nPING\r\n']),
      { commands: [], result: 'drained', error: '' },
      'INT_MAX, as Redis 7',
    );
    assert.equal(feed(['x'.repeat(64 * 1024)]).result, 'drained');
    assert.equal(feed(['*1\r\nPING']).result, 'drained', "no '$' error before the line end arrives, as in Redis");
  });

  test('a bulk string is taken by its length, and the two bytes after it are skipped unchecked, as Redis does', () => {
    assert.deepEqual(feed(['*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n']).commands, [['PING'], ['PING']]);
  });

  test('needBytes: a large bulk announces its full size, and readCommands waits without parsing', () => {
    const input = new RingBuffer();
    const parser = new RespParser();
    const header = '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n';
    let visits = 0;
    input.write(Buffer.from(header + 'x'.repeat(1000)));
    assert.equal(
      readCommands(input, parser, () => ++visits > 0),
      'drained',
    );
    assert.equal(parser.needBytes, header.length + 100_000 + 2);
    assert.equal(input.length, header.length + 1000, 'the partial command stays in the input');
    input.write(Buffer.from('x'.repeat(99_000)));
    assert.equal(
      readCommands(input, parser, () => ++visits > 0),
      'drained',
    );
    assert.equal(visits, 0);
    input.write(Buffer.from('\r\n'));
    assert.equal(
      readCommands(input, parser, (args) => args.len(2) === 100_000 && ++visits > 0),
      'drained',
    );
    assert.equal(visits, 1);
    assert.equal(input.length, 0);
  });

  test('a visitor returning false stops the read after that command; the commands after it stay in the input', () => {
    const rest = multibulk(['PING']) + '*2\r\n$3\r\nGET';
    const input = RingBuffer.withData(Buffer.from(multibulk(['QUIT']) + rest));
    const parser = new RespParser();
    const seen: string[] = [];
    assert.equal(
      readCommands(input, parser, (args) => (seen.push(args.str(0)), false)),
      'stopped',
    );
    assert.deepEqual(seen, ['QUIT']);
    assert.equal(Buffer.from(input.bytes()).toString(), rest);
    assert.equal(
      readCommands(input, parser, (args) => (seen.push(args.str(0)), true)),
      'drained',
    );
    assert.deepEqual(seen, ['QUIT', 'PING']);
    assert.equal(Buffer.from(input.bytes()).toString(), '*2\r\n$3\r\nGET', 'the partial command is kept');
  });

  test('commands wrapping around the end of the input storage parse as if contiguous, the cut one resumed', () => {
    const input = new RingBuffer(64);
    const parser = new RespParser();
    const seen: string[][] = [];
    const visit = (args: Args): boolean => {
      const cmd: string[] = [];
      for (let i = 0; i < args.argc; i++) cmd.push(args.str(i));
      seen.push(cmd);
      return true;
    };
    const wire =
      multibulk(['GET', 'k1']) +
      multibulk(['SET', 'k2', 'v2']) +
      multibulk(['SET', 'k3', 'value-3']) +
      multibulk(['PING']);
    input.write(Buffer.from(wire.slice(0, 40)));
    assert.equal(readCommands(input, parser, visit), 'drained');
    input.write(Buffer.from(wire.slice(40, 80)));
    assert.equal(input.capacity, 64);
    assert.ok(input.peekAll()[1].length > 0, 'the input wraps around the end of its storage');
    assert.equal(readCommands(input, parser, visit), 'drained');
    assert.equal(seen.length, 2, 'the command before the end ran; the one cut by it waits for its last bytes');
    input.write(Buffer.from(wire.slice(80)));
    assert.equal(readCommands(input, parser, visit), 'drained');
    assert.deepEqual(seen, [['GET', 'k1'], ['SET', 'k2', 'v2'], ['SET', 'k3', 'value-3'], ['PING']]);
    assert.equal(input.length, 0);
  });

  test('a limit checked on the bytes before the end of storage is checked again on all of them', () => {
    const input = new RingBuffer(128 * 1024);
    const parser = new RespParser();
    const seen: number[] = [];
    input.write(Buffer.from(`${'PING\r\n'.repeat(10_000)}ECHO ${'a'.repeat(10_000)}`));
    assert.equal(
      readCommands(input, parser, () => true),
      'drained',
    );
    input.write(Buffer.from(`${'a'.repeat(70_000)}\r\n`));
    assert.ok(
      input.peekAll()[0].length > 64 * 1024 && input.peekAll()[1].length > 0,
      'over 64 KB before the end, the line end after it',
    );
    assert.equal(
      readCommands(input, parser, (args) => (seen.push(args.len(1)), true)),
      'drained',
      'no "too big inline request": its end has arrived',
    );
    assert.deepEqual(seen, [80_000]);
    assert.equal(input.length, 0);
  });

  test('between reads the parser keeps no view of the input, and a huge command leaves no large table behind', () => {
    const input = new RingBuffer();
    const parser = new RespParser();
    const idle = parser.heldBytes;
    const args = Array.from({ length: 100_000 }, (_, i) => `a${i}`);
    input.write(Buffer.from(multibulk(['DEL', ...args]) + '*3\r\n$3\r\nSET\r\n'));
    let argc = 0;
    assert.equal(
      readCommands(input, parser, (a) => ((argc = a.argc), true)),
      'drained',
    );
    assert.equal(argc, 100_001);
    assert.equal(parser.heldBytes, idle, 'the table grown for 100001 arguments was dropped');
    assert.equal(parser.view(0).length, 0, 'the parser no longer points into the input');
    const partial = Array.from({ length: 5000 }, () => '$1\r\nx\r\n').join('');
    input.retrieveAll();
    parser.reset();
    input.write(Buffer.from(`*100000\r\n${partial}`));
    assert.equal(
      readCommands(input, parser, () => true),
      'drained',
    );
    assert.ok(parser.heldBytes >= 5000 * 16, 'a partial command keeps its table, and heldBytes counts it');
  });

  test('Args: case-insensitive words, copies that outlive the input, strict 64-bit integers', () => {
    const r = new RespParser();
    const buf = Buffer.from(multibulk(['set', 'EX', '-12', '9223372036854775807', '007', 'abc']));
    assert.equal(r.parse(buf, 0), buf.length);
    assert.equal(r.argc, 6);
    assert.ok(r.is(1, 'ex') && !r.is(1, 'px') && !r.is(0, 'se'));
    assert.deepEqual([r.int(2), r.int(3), r.int(4), r.int(5)], [-12, 9223372036854775807n, null, null]);
    assert.equal(r.len(3), 19);
    const copy = r.copy(5);
    buf.fill(0);
    assert.equal(copy.toString(), 'abc');
  });

  test('parseInt64 takes what string2ll takes', () => {
    const p = (s: string): number | bigint | null => parseInt64(Buffer.from(s), 0, s.length);
    assert.equal(p('0'), 0);
    assert.equal(p('-12'), -12);
    assert.equal(p('9007199254740991'), 9007199254740991);
    assert.equal(p('9007199254740993'), 9007199254740993n);
    assert.equal(p('9223372036854775807'), 9223372036854775807n);
    assert.equal(p('-9223372036854775808'), -9223372036854775808n);
    for (const bad of [
      '',
      '-',
      '-0',
      '01',
      '+1',
      ' 1',
      '1 ',
      '1.5',
      '9223372036854775808',
      '-9223372036854775809',
      '1'.repeat(21),
    ]) {
      assert.equal(p(bad), null, JSON.stringify(bad));
    }
  });

  test('property: any command stream split at random points parses into the same commands, wrapped or not', () => {
    const arg = fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1')),
      fc.stringMatching(/^[a-zA-Z0-9:_-]{1,12}$/),
    );
    const command = fc.record({
      args: fc.array(arg, { minLength: 1, maxLength: 6 }),
      inline: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(command, { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (cmds, cuts) => {
          const wire = cmds
            .map(({ args, inline }) => (inline ? `${args.map(inlineArg).join(' ')}\r\n` : multibulk(args)))
            .join('');
          const bytes = Buffer.from(wire, 'latin1');
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const chunks: Buffer[] = [];
          let from = 0;
          for (const at of [...points, bytes.length]) {
            chunks.push(bytes.subarray(from, at));
            from = at;
          }
          const whole = feed([bytes]);
          const split = feed(chunks);
          assert.equal(whole.result, 'drained');
          assert.deepEqual(
            whole.commands,
            cmds.map((c) => c.args),
          );
          assert.deepEqual(split, whole);
          assert.deepEqual(feed(chunks, 64), whole, 'in a small ring, where commands wrap around its end');
        },
      ),
      { numRuns: 500 },
    );
  });
});

/** Everything `w` built, as the pieces writeTo() hands out. */
function pieces(w: ReplyWriter): Uint8Array[] {
  const out: Uint8Array[] = [];
  w.writeTo({ write: (b) => (out.push(b), true) });
  return out;
}

describe('redis reply encoders', () => {
  test('each reply type is encoded as RESP2, and everything written leaves in one writeTo()', () => {
    const w = new ReplyWriter();
    assert.deepEqual(pieces(w), []);
    w.ok();
    w.pong();
    w.simple('string');
    w.error('ERR bad\r\nthing');
    w.integer(0);
    w.integer(1);
    w.integer(-42);
    w.integer(9223372036854775807n);
    w.bulk(Buffer.from('hi'));
    w.bulkString('\xff');
    w.nullBulk();
    w.nullArray();
    w.arrayHeader(2);
    assert.equal(w.pending, 103);
    const all = pieces(w);
    assert.equal(all.length, 1);
    assert.equal(
      Buffer.from(all[0]!).toString('latin1'),
      '+OK\r\n+PONG\r\n+string\r\n-ERR bad  thing\r\n:0\r\n:1\r\n:-42\r\n:9223372036854775807\r\n$2\r\nhi\r\n$1\r\n\xff\r\n$-1\r\n*-1\r\n*2\r\n',
    );
    assert.equal(w.pending, 0);
    assert.deepEqual(pieces(w), []);
  });

  test('bytes handed out are never overwritten, across chunk growth', () => {
    const w = new ReplyWriter();
    w.bulkString('first');
    const first = pieces(w);
    const big = Buffer.alloc(200_000, 0x61);
    w.bulk(big);
    w.integer(7);
    const second = Buffer.concat(pieces(w));
    w.simple('third');
    const third = pieces(w);
    assert.equal(Buffer.concat(first).toString(), '$5\r\nfirst\r\n');
    assert.equal(second.length, '$200000\r\n'.length + 200_000 + 2 + ':7\r\n'.length);
    assert.equal(second.subarray(second.length - 4).toString(), ':7\r\n');
    assert.equal(Buffer.concat(third).toString(), '+third\r\n');
  });

  test('a large stored value goes out by reference, between the pieces around it; a small one is copied', () => {
    const w = new ReplyWriter();
    const value = Buffer.alloc(1024 * 1024, 0x62);
    w.ok();
    w.value(value);
    w.value(value);
    w.value(Buffer.from('small'));
    w.value('str');
    assert.equal(w.pending, 5 + 2 * (value.length + 12) + 11 + 9);
    const out = pieces(w);
    assert.equal(out.filter((p) => p === value).length, 2, 'the value itself, not a copy, is handed out twice');
    assert.ok(
      out.every((p) => p === value || p.length < 64),
      'nothing else holds a copy of it',
    );
    const wire = Buffer.concat(out).toString('latin1');
    const bulk = `$${value.length}\r\n${'b'.repeat(value.length)}\r\n`;
    assert.equal(wire, `+OK\r\n${bulk}${bulk}$5\r\nsmall\r\n$3\r\nstr\r\n`);
  });

  test('a long run of small replies grows the chunk geometrically: few pieces, no byte copied twice', () => {
    const w = new ReplyWriter();
    const n = 400_000;
    for (let i = 0; i < n; i++) w.bulkString('0123456789abcdef');
    const out = pieces(w);
    const total = out.reduce((sum, p) => sum + p.length, 0);
    assert.equal(total, n * 23);
    assert.ok(
      out.length <= 10,
      `${out.length} pieces for ${total} bytes (chunks of 64 KiB, 64 KiB, 128 KiB, ... 4 MiB, 4 MiB)`,
    );
    const buffers = new Set(out.map((p) => p.buffer));
    assert.equal(buffers.size, out.length, 'each piece is its own chunk: none was moved into a bigger one');
    assert.ok(Buffer.concat(out).toString('latin1').startsWith('$16\r\n0123456789abcdef\r\n$16\r\n'));
  });

  test('writeTo() reports a sink that wants no more, after writing every piece in order', () => {
    const w = new ReplyWriter();
    const value = Buffer.alloc(20_000, 0x63);
    w.value(value);
    w.ok();
    const got: Uint8Array[] = [];
    let calls = 0;
    assert.equal(w.writeTo({ write: (b) => (got.push(b), ++calls > 1) }), false);
    assert.equal(Buffer.concat(got).toString('latin1'), `$20000\r\n${'c'.repeat(20_000)}\r\n+OK\r\n`);
    assert.equal(w.pending, 0);
  });
});

describe('redis KEYS glob', () => {
  test('matches as Redis 7.0 matched the same keys', () => {
    const keys = ['k1', 'k2', 'k10', 'kx', 'hello', 'hallo', 'hxllo', 'hllo', 'heeeello', 'a*b'];
    const expected: [string, string[]][] = [
      ['k?', ['k1', 'k2', 'kx']],
      ['k*', ['k1', 'k2', 'k10', 'kx']],
      ['h?llo', ['hello', 'hallo', 'hxllo']],
      ['h*llo', ['hello', 'hallo', 'hxllo', 'hllo', 'heeeello']],
      ['h[ae]llo', ['hello', 'hallo']],
      ['h[^e]llo', ['hallo', 'hxllo']],
      ['h[a-b]llo', ['hallo']],
      ['h[b-a]llo', ['hallo']],
      ['a\\*b', ['a*b']],
      ['[', []],
      ['h[', []],
      ['*[x', ['kx']],
      ['*', keys],
      ['*l*o', ['hello', 'hallo', 'hxllo', 'hllo', 'heeeello']],
    ];
    for (const [pattern, want] of expected) {
      assert.deepEqual(
        keys.filter((k) => globMatch(pattern, k)),
        want,
        pattern,
      );
    }
  });
});
