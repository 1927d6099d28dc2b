import type { experimental } from '@grpc/grpc-js';
import type { KeyPair } from '../../common/src/tls.js';

type IdentityListener = Parameters<experimental.CertificateProvider['addIdentityCertificateListener']>[0];

/**
 * The serving certificate of the API and ingest ports, replaceable while they run: a new one reaches the HTTPS
 * server (`onChange`) and the gRPC server (as its grpc-js certificate provider) for new connections; open
 * connections keep the certificate they were opened with.
 */
export class ServingIdentity implements experimental.CertificateProvider {
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly listeners: ((pair: KeyPair) => void)[] = [];

  constructor(private current: KeyPair) {}

  get pair(): KeyPair {
    return this.current;
  }

  /** Replaces the certificate; a no-op when it is the same. */
  set(pair: KeyPair): boolean {
    if (pair.cert === this.current.cert && pair.key === this.current.key) return false;
    this.current = pair;
    for (const l of this.listeners) l(pair);
    for (const l of this.identityListeners) l(this.update());
    return true;
  }

  onChange(listener: (pair: KeyPair) => void): void {
    this.listeners.push(listener);
  }

  private update() {
    return { certificate: Buffer.from(this.current.cert), privateKey: Buffer.from(this.current.key) };
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    // NOTE: asynchronously: grpc-js registers its server's watcher only after adding this listener, and an
    // update delivered before that is lost (the server would then drop every connection as "unloaded").
    queueMicrotask(() => {
      if (this.identityListeners.has(listener)) listener(this.update());
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  // No client-certificate verification on these ports: no CA updates to give.
  addCaCertificateListener(): void {}
  removeCaCertificateListener(): void {}
}
