/**
 * A progress line for uploads and downloads on a terminal: bytes so far and the rate,
 * redrawn at most ten times a second, finished with a newline.
 */
import type { Writable } from 'node:stream';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

export class Progress {
  private bytes = 0;
  private readonly start = Date.now();
  private last = 0;
  private drawn = false;

  constructor(private readonly out: Writable, private readonly what: string) {}

  add(n: number): void {
    this.bytes += n;
    const now = Date.now();
    if (now - this.last >= 100) {
      this.last = now;
      this.draw(now);
    }
  }

  private draw(now: number): void {
    const secs = Math.max((now - this.start) / 1000, 0.001);
    this.out.write(`\r${this.what} ${formatBytes(this.bytes)} (${formatBytes(Math.round(this.bytes / secs))}/s)\x1b[K`);
    this.drawn = true;
  }

  finish(): void {
    if (this.bytes === 0 && !this.drawn) return;
    this.draw(Date.now());
    this.out.write('\n');
    this.bytes = 0;
    this.drawn = false;
  }
}
