/**
 * What every binary shares before it does any work: the version line that
 * `--version` prints.
 *
 * This module imports nothing of ours on purpose: every bundle includes it, and
 * a binary's start-up should cost only what that binary uses.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Set by scripts/bundle.mjs (esbuild `define`) to package.json's version. */
declare const ALBATROSS_VERSION: string | undefined;

/**
 * The wire protocol version we speak, as upstream prints it. Equal to WIRE_VERSION
 * in core/wire/common.ts, repeated here so that `--version` does not load the codec.
 */
export const PROTOCOL_VERSION = 5;

/** The package version; compiled into each bundle, read from package.json only when unbundled (build/). */
export function packageVersion(): string {
  if (typeof ALBATROSS_VERSION === 'string') return ALBATROSS_VERSION;
  try {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** `vmmd version 0.1.0 protocol version 5` */
export function versionLine(binary: string): string {
  return `${binary} version ${packageVersion()} protocol version ${PROTOCOL_VERSION}`;
}

/** True if `--version` is among the options (before a `--` that ends them). */
export function wantsVersion(args: readonly string[] = process.argv.slice(2)): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--version') return true;
  }
  return false;
}

/** Prints the version line and exits 0 if `--version` was given; returns otherwise. */
export function answerVersion(binary: string, args: readonly string[] = process.argv.slice(2)): void {
  if (wantsVersion(args)) {
    process.stdout.write(`${versionLine(binary)}\n`);
    process.exit(0);
  }
}
