/**
 * Shared helpers for tests that use the committed eBPF fixtures (fixtures/c/NAME.c -> fixtures/obj/NAME.o)
 * and the LLVM tools that serve as oracles (llvm-objdump-19, llvm-readelf-19, llvm-mc-19, clang-19).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'fixtures', 'build.sh'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('cannot find the repository root (fixtures/build.sh) above the test files');
}

export const ROOT = findRoot();
export const FIXTURES = join(ROOT, 'fixtures');
export const OBJ_DIR = join(FIXTURES, 'obj');
/** The shared test corpora (bpf_conformance, bpftrace's runtime tests): `../shared/corpora` beside the repo. */
export const CORPORA = process.env.TSBPF_CORPORA ?? join(ROOT, '..', 'shared', 'corpora');

/** Names of every committed fixture object, without `.o` (e.g. `xdp_parser`, `xdp_parser.bpfeb`). */
export function fixtureNames(): string[] {
  return readdirSync(OBJ_DIR)
    .filter((f) => f.endsWith('.o'))
    .map((f) => f.slice(0, -2))
    .sort();
}

export const fixturePath = (name: string): string => join(OBJ_DIR, `${name}.o`);

export function loadFixture(name: string): Uint8Array {
  const buf = readFileSync(fixturePath(name));
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

const toolCache = new Map<string, boolean>();
/** True when the named tool runs here (`TOOL --version` exits 0). */
export function hasTool(tool: string): boolean {
  let ok = toolCache.get(tool);
  if (ok === undefined) {
    const r = spawnSync(tool, ['--version'], { stdio: 'ignore' });
    ok = r.status === 0;
    toolCache.set(tool, ok);
  }
  return ok;
}

/** Runs a tool and returns its stdout (throws on failure). */
export function run(tool: string, args: readonly string[], cwd?: string): string {
  return execFileSync(tool, args, { encoding: 'utf8', cwd, maxBuffer: 64 * 1024 * 1024 });
}

export const OBJDUMP = 'llvm-objdump-19';
export const READELF = 'llvm-readelf-19';
export const LLVM_MC = 'llvm-mc-19';
export const CLANG = 'clang-19';

export interface Reference {
  text: string;
  source: 'live' | 'committed';
}

/**
 * `llvm-objdump-19 -d` of a fixture (with `--mcpu=v4` when `v4`): run live when the tool exists (from the
 * obj directory, so the header names the file as the committed reference does), else the committed
 * fixtures/obj/NAME[.v4].objdump, else undefined.
 */
export function objdumpReference(name: string, v4 = false): Reference | undefined {
  if (hasTool(OBJDUMP)) {
    const args = v4 ? ['-d', '--mcpu=v4', `${name}.o`] : ['-d', `${name}.o`];
    return { text: run(OBJDUMP, args, OBJ_DIR), source: 'live' };
  }
  const file = join(OBJ_DIR, `${name}${v4 ? '.v4' : ''}.objdump`);
  if (existsSync(file)) return { text: readFileSync(file, 'utf8'), source: 'committed' };
  return undefined;
}

/** A small seeded PRNG (mulberry32) so fuzz runs are reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
