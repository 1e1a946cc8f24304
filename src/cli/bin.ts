#!/usr/bin/env node
import { writeSync } from 'node:fs';
import { main } from './main.js';

/** A reader that went away (`tsbpf ... | head`) is not an error worth a stack trace. */
function exitOnEpipe(e: NodeJS.ErrnoException): void {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
}

/**
 * Writes to fd 1 or 2. process.stdout is made on first use, and for a pipe that loads net and the stream
 * machinery (~2.5 ms of `tsbpf trace`'s start-up, before it can attach anything); so bytes go to the fd with
 * writeSync, as Node writes to files and pipes on Linux anyway. Once a write cannot be made that way (EAGAIN:
 * a non-blocking fd shared with another process), the rest and everything after goes through the stream,
 * so the order holds.
 */
function fdWriter(fd: 1 | 2): (data: string | Uint8Array) => void {
  let stream: NodeJS.WriteStream | undefined;
  const viaStream = (bytes: Uint8Array) => {
    if (!stream) {
      stream = fd === 1 ? process.stdout : process.stderr;
      stream.on('error', exitOnEpipe);
    }
    stream.write(bytes);
  };
  return (data) => {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (stream) return viaStream(bytes);
    let off = 0;
    try {
      while (off < bytes.length) off += writeSync(fd, bytes, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return exitOnEpipe(e as NodeJS.ErrnoException);
      viaStream(bytes.subarray(off));
    }
  };
}

async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

const stdout = fdWriter(1);
const stderr = fdWriter(2);

process.exitCode = await main(process.argv.slice(2), {
  stdout,
  stdoutBytes: stdout,
  stderr,
  readStdin,
});
