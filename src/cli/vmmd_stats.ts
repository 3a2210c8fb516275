import { notImplemented } from './stub.js';

notImplemented('vmmd_stats');
