import { notImplemented } from './stub.js';

notImplemented('vmmp_request');
