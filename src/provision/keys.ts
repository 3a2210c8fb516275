/**
 * Private keys for provisioning: generation (Ed25519 by default, RSA and NIST curves on
 * request) through WebCrypto, PEM (PKCS#8) storage, loading of any PEM private key, and
 * the signature algorithm that goes with each key type (CERTS.md §7.1).
 */
import 'reflect-metadata';
import * as crypto from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { type Result, ok, err } from '../core/result.js';

type WebCrypto = crypto.webcrypto.Crypto;
export type CryptoKey = crypto.webcrypto.CryptoKey;
export type CryptoKeyPair = crypto.webcrypto.CryptoKeyPair;
type Algorithm = crypto.webcrypto.Algorithm;

const webcrypto: WebCrypto = crypto.webcrypto;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
x509.cryptoProvider.set(webcrypto as any);

export const KEY_TYPES = ['ed25519', 'rsa2048', 'rsa4096', 'p256', 'p384', 'p521'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export function parseKeyType(s: string): Result<KeyType> {
  const t = s.toLowerCase();
  return (KEY_TYPES as readonly string[]).includes(t)
    ? ok(t as KeyType)
    : err(`unknown key type ${JSON.stringify(s)} (one of ${KEY_TYPES.join(', ')})`);
}

/** A key pair usable by @peculiar/x509, with the signature algorithm of its type. */
export interface KeyPair {
  type: KeyType;
  keys: CryptoKeyPair;
  signingAlgorithm: Algorithm;
}

interface Params {
  gen: Algorithm & Record<string, unknown>;
  imp: Algorithm & Record<string, unknown>;
  sign: Algorithm & Record<string, unknown>;
}

function paramsOf(t: KeyType): Params {
  switch (t) {
    case 'ed25519':
      return { gen: { name: 'Ed25519' }, imp: { name: 'Ed25519' }, sign: { name: 'Ed25519' } };
    case 'rsa2048':
    case 'rsa4096': {
      const rsa = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
      return {
        gen: { ...rsa, modulusLength: t === 'rsa2048' ? 2048 : 4096, publicExponent: new Uint8Array([1, 0, 1]) },
        imp: rsa,
        sign: rsa,
      };
    }
    case 'p256':
    case 'p384':
    case 'p521': {
      const namedCurve = t === 'p256' ? 'P-256' : t === 'p384' ? 'P-384' : 'P-521';
      const hash = t === 'p256' ? 'SHA-256' : t === 'p384' ? 'SHA-384' : 'SHA-512';
      return { gen: { name: 'ECDSA', namedCurve }, imp: { name: 'ECDSA', namedCurve }, sign: { name: 'ECDSA', hash } };
    }
    default: {
      const never: never = t;
      return never;
    }
  }
}

export async function generateKey(t: KeyType): Promise<KeyPair> {
  const p = paramsOf(t);
  const keys = (await webcrypto.subtle.generateKey(p.gen, true, ['sign', 'verify'])) as CryptoKeyPair;
  return { type: t, keys, signingAlgorithm: p.sign };
}

/** PKCS#8 PEM of the private key. */
export async function privateKeyPem(k: KeyPair): Promise<string> {
  const der = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', k.keys.privateKey));
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** Which of our key types a node KeyObject is, or why it is none of them. */
function keyTypeOf(k: crypto.KeyObject): Result<KeyType> {
  switch (k.asymmetricKeyType) {
    case 'ed25519':
      return ok('ed25519');
    case 'rsa': {
      const bits = k.asymmetricKeyDetails?.modulusLength ?? 0;
      // any RSA size signs the same way; the name only matters for generation
      return ok(bits >= 4096 ? 'rsa4096' : 'rsa2048');
    }
    case 'ec': {
      const c = k.asymmetricKeyDetails?.namedCurve;
      if (c === 'prime256v1') return ok('p256');
      if (c === 'secp384r1') return ok('p384');
      if (c === 'secp521r1') return ok('p521');
      return err(`unsupported elliptic curve ${c ?? '(unknown)'}`);
    }
    default:
      return err(`unsupported key type ${k.asymmetricKeyType ?? '(unknown)'}`);
  }
}

/** Loads a PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC). `what` names it in errors. */
export async function loadPrivateKey(pem: string, what: string): Promise<Result<KeyPair>> {
  let priv: crypto.KeyObject;
  try {
    priv = crypto.createPrivateKey({ key: pem, format: 'pem' });
  } catch (e) {
    return err(`${what}: not a PEM private key (${(e as Error).message})`);
  }
  const t = keyTypeOf(priv);
  if (!t.ok) return err(`${what}: ${t.error}`);
  const p = paramsOf(t.value);
  try {
    const pkcs8 = priv.export({ type: 'pkcs8', format: 'der' });
    const spki = crypto.createPublicKey(priv).export({ type: 'spki', format: 'der' });
    const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, p.imp, true, ['sign']);
    const publicKey = await webcrypto.subtle.importKey('spki', spki, p.imp, true, ['verify']);
    return ok({ type: t.value, keys: { privateKey, publicKey }, signingAlgorithm: p.sign });
  } catch (e) {
    return err(`${what}: cannot use the key (${(e as Error).message})`);
  }
}

/** DER SubjectPublicKeyInfo of the key pair's public key. */
export async function spkiOf(k: KeyPair): Promise<Uint8Array> {
  return new Uint8Array(await webcrypto.subtle.exportKey('spki', k.keys.publicKey));
}

export { webcrypto };
