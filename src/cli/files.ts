/** File access for the CLI: every failure is a TsbpfError('io') that names the file. */
import { readFileSync, writeFileSync } from 'node:fs';
import { TsbpfError } from '../errors.js';

export function readInput(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new TsbpfError(
      'io',
      `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

export function readText(path: string): string {
  return new TextDecoder().decode(readInput(path));
}

export function writeOutput(path: string, data: Uint8Array | string): void {
  try {
    writeFileSync(path, data);
  } catch (e) {
    throw new TsbpfError(
      'io',
      `cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}
