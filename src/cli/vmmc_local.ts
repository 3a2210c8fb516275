import { notImplemented } from './stub.js';

notImplemented('vmmc_local');
