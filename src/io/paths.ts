/**
 * Where the daemons' runtime files live when `--tmpdir` is not given: `$ALBATROSS_TMPDIR` if
 * set and not empty, else /run/albatross (FreeBSD: /var/run/albatross). Every binary uses it.
 */
export function defaultTmpdir(): string {
  return process.env.ALBATROSS_TMPDIR || (process.platform === 'freebsd' ? '/var/run/albatross' : '/run/albatross');
}
