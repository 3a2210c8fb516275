/**
 * The one-shot certificate of vmmc_bistro (CERTS.md §7.6).
 */
import type * as x509 from '@peculiar/x509';
import { type Result, ok, err } from '../core/result.js';
import type { LeafCommand } from '../core/wire/leaf.js';
import { type KeyPair, type KeyType, generateKey, privateKeyPem } from '../provision/keys.js';
import { ONE_SHOT_SECONDS, checkAgainstCa, issue, keyMatchesCert, policyOfCert } from '../provision/certs.js';

/**
 * The throw-away leaf of a one-shot command (CERTS.md §7.6): checked against the CA's
 * policy, a fresh key, 5 minutes, leaf extensions and key ids, signed by the CA.
 */
export async function oneShotCertificate(
  caCert: x509.X509Certificate, caKey: KeyPair, cn: string, cmd: LeafCommand, keyType: KeyType,
): Promise<Result<{ certPem: string; keyPem: string }>> {
  if (!(await keyMatchesCert(caKey, caCert))) return err("Public key of certificate doesn't match private key");
  const p = policyOfCert(caCert);
  if (!p.ok) return p;
  const c = checkAgainstCa(cmd, p.value);
  if (!c.ok) return c;
  const key = await generateKey(keyType);
  const cert = await issue({
    subject: [{ '2.5.4.3': [cn] }], subjectKey: key.keys.publicKey, issuer: caCert.subjectName, signer: caKey, set: 'leaf', cmd,
    keyIds: true, validitySeconds: ONE_SHOT_SECONDS,
  });
  if (cert.rawData.byteLength > 2 ** 24) return err('certificate too big for TLS');
  return ok({ certPem: cert.toString('pem') + '\n', keyPem: await privateKeyPem(key) });
}
