/**
 * The web UI of vmmd_web (placeholder until the UI lands).
 */
import type * as http from 'node:http';
import type { Api } from './api.js';

export interface Ui {
  attach(api: Api): void;
  handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<boolean>;
}
