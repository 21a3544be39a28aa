/**
 * Glob matching as Redis's KEYS does it (util.c stringmatchlen), over latin1 strings so that any
 * key bytes match: `*` any run, `?` one byte, `[abc]`, `[^abc]`, `[a-z]` (a reversed range is
 * swapped; a class left open at the end of the pattern ends there), and `\x` for a literal x.
 *
 * The star is matched by backtracking to the last star only, which gives the same answers as
 * Redis's recursion in time linear in pattern times key length.
 */

const kStar = 0x2a;
const kQuestion = 0x3f;
const kOpen = 0x5b;
const kClose = 0x5d;
const kCaret = 0x5e;
const kDash = 0x2d;
const kBackslash = 0x5c;

/** Whether `key` matches the glob `pattern` (both latin1 strings). */
export function globMatch(pattern: string, key: string): boolean {
  const plen = pattern.length;
  const slen = key.length;
  if (slen === 0) return plen === 0;
  let pi = 0;
  let si = 0;
  let starP = -1;
  let starS = 0;
  while (si < slen) {
    if (pi < plen) {
      if (pattern.charCodeAt(pi) === kStar) {
        starP = pi++;
        starS = si;
        continue;
      }
      const next = matchOne(pattern, pi, key.charCodeAt(si));
      if (next >= 0) {
        pi = next;
        si++;
        continue;
      }
    }
    if (starP < 0) return false;
    pi = starP + 1;
    si = ++starS;
  }
  while (pi < plen && pattern.charCodeAt(pi) === kStar) pi++;
  return pi === plen;
}

/** Matches the pattern token at `pi` (not a star) against one byte; returns the index after the token, or -1. */
function matchOne(p: string, pi: number, ch: number): number {
  const plen = p.length;
  const c = p.charCodeAt(pi);
  if (c === kQuestion) return pi + 1;
  if (c === kBackslash && plen - pi >= 2) return p.charCodeAt(pi + 1) === ch ? pi + 2 : -1;
  if (c !== kOpen) return c === ch ? pi + 1 : -1;
  let i = pi + 1;
  const not = i < plen && p.charCodeAt(i) === kCaret;
  if (not) i++;
  let match = false;
  for (;;) {
    if (i >= plen) break;
    const k = p.charCodeAt(i);
    if (k === kBackslash && plen - i >= 2) {
      i++;
      if (p.charCodeAt(i) === ch) match = true;
    } else if (k === kClose) {
      i++;
      break;
    } else if (plen - i >= 3 && p.charCodeAt(i + 1) === kDash) {
      let lo = k;
      let hi = p.charCodeAt(i + 2);
      if (lo > hi) [lo, hi] = [hi, lo];
      if (ch >= lo && ch <= hi) match = true;
      i += 2;
    } else if (k === ch) {
      match = true;
    }
    i++;
  }
  return match !== not ? i : -1;
}
