import type { RateLimiter } from '../platform/http.js';

/**
 * Per-credential token buckets, in the memory of one process: each credential may make
 * `perSecond` requests a second, sustained, and up to `burst` at once. The limit is per process —
 * behind a load balancer spreading over N processes a credential gets up to N times it — which
 * keeps the check at one map lookup and a little arithmetic, with no shared store on the hot path.
 */

/** Credentials tracked at once; past this the buckets start over (each credential full again). */
export const maxRateLimitBuckets = 100_000;

export class TokenBuckets implements RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; refilledAtMs: number }>();

  constructor(
    readonly perSecond: number,
    readonly burst: number,
    readonly nowMs: () => number = () => performance.now(),
  ) {
    if (!(perSecond > 0) || !(burst >= 1)) throw new Error('a rate limit needs perSecond > 0 and burst >= 1');
  }

  take(key: string): number {
    const now = this.nowMs();
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= maxRateLimitBuckets) this.#buckets.clear();
      bucket = { tokens: this.burst, refilledAtMs: now };
      this.#buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.refilledAtMs) * this.perSecond) / 1000);
      bucket.refilledAtMs = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    // Whole seconds until one request's worth has refilled, at least one (Retry-After is in seconds).
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.perSecond));
  }
}
