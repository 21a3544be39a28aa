/**
 * What the figures were measured on: CPU model, cores, kernel, runtimes. Recorded beside every
 * table, because the figures only mean something on the machine that produced them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

export interface Machine {
  cpuModel: string;
  cores: number;
  kernel: string;
  node: string;
  bun: string | null;
  gcc: string;
  nofile: number;
}

const kWantedNofile = 65536;

function firstLine(text: string): string {
  return text.split('\n')[0]?.trim() ?? '';
}

function runVersion(cmd: string, args: string[]): string | null {
  try {
    return firstLine(execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  } catch {
    return null;
  }
}

/** The Bun binary shipped in @oven/bun-linux-x64, when that package is installed and runs. */
export function findBun(root: string): string | null {
  const bin = join(root, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun');
  return existsSync(bin) && runVersion(bin, ['--version']) !== null ? bin : null;
}

/**
 * The open-file limit to give servers and the load generator: 65536 where this process may raise
 * its hard limit that far, else its current hard limit.
 */
function nofileLimit(): number {
  if (runVersion('prlimit', [`--nofile=${kWantedNofile}:${kWantedNofile}`, 'true']) !== null) return kWantedNofile;
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const hard = m?.[1] === 'unlimited' ? kWantedNofile : Number(m?.[1] ?? 1024);
  return Math.min(hard, kWantedNofile);
}

export function describeMachine(root: string): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  const bun = findBun(root);
  return {
    cpuModel: model,
    cores: os.cpus().length,
    kernel: `${os.type()} ${os.release()} ${os.machine()}`,
    node: process.version,
    bun: bun === null ? null : runVersion(bun, ['--version']),
    gcc: runVersion('gcc', ['--version']) ?? 'unknown',
    nofile: nofileLimit(),
  };
}
