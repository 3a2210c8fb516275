/**
 * The instances vmmd_web serves: the local one (from the command line) and the remote ones
 * kept in the state file, which the administrator adds and removes through the API.
 */
import { type Result, ok, err } from '../core/result.js';
import { parsePath } from '../core/name.js';
import type { Logger } from '../daemon/server.js';
import type { Instance } from './instance.js';
import { type RemoteConfig, RemoteInstance } from './remote.js';
import type { Store } from './store.js';

export { INSTANCE_NAME_RE } from './store.js';

export class Registry {
  private remotes: Instance[] = [];

  constructor(private readonly local: Instance[], private readonly store: Store, private readonly log: Logger) {}

  all(): Instance[] {
    return [...this.local, ...this.remotes];
  }

  /** Loads the remote instances of the state file; one that cannot be loaded is logged and left out. */
  async load(): Promise<void> {
    for (const c of this.store.instances) {
      const r = await this.make(c);
      if (r.ok) this.remotes.push(r.value);
      else this.log('error', `remote instance ${c.name}: ${r.error}; left out`);
    }
  }

  private async make(c: RemoteConfig): Promise<Result<Instance>> {
    const base = parsePath(c.path);
    if (!base.ok) return err(`path: ${base.error}`);
    return RemoteInstance.load(c, base.value);
  }

  async add(c: RemoteConfig): Promise<Result<Instance>> {
    if (this.all().some((i) => i.name === c.name)) return err(`instance ${c.name} exists`);
    const r = await this.make(c);
    if (!r.ok) return r;
    const s = this.store.addInstance(c);
    if (!s.ok) return s;
    this.remotes.push(r.value);
    return r;
  }

  remove(name: string): Result<void> {
    if (this.local.some((i) => i.name === name)) return err(`${name} is the local instance`);
    const s = this.store.removeInstance(name);
    if (!s.ok) return s;
    this.remotes = this.remotes.filter((i) => i.name !== name);
    return ok(undefined);
  }
}
