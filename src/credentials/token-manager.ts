import type { RotatedToken } from "../client.js";
import { InvalidArgumentError, UnauthenticatedError, redactSecrets } from "../errors.js";
import type { Logger } from "../logger.js";
import { readTokenTimes } from "./jwt-expiry.js";
import {
  DEFAULT_MAX_RETRY_DELAY_MS,
  DEFAULT_RENEW_BEFORE_MS,
  DEFAULT_RETRY_DELAY_MS,
  TOKEN_EXPIRY_MARGIN_MS,
  isTransientRenewalFailure,
  renewalThresholdMs,
  retryDelayMs,
} from "./renewal-schedule.js";
import { requestProvidedToken, type TokenProvider } from "./token-provider.js";
import type { TokenStore } from "./token-store.js";

/** Settings of automatic token renewal, the client option `tokenRotation`. */
export interface TokenRotationOptions {
  /**
   * How long before expiry to renew the token, in milliseconds. Default 30 days. The SDK never
   * renews earlier than half the token's lifetime, so an hour-long token is renewed after 30 minutes.
   */
  renewBeforeMs?: number;
  /**
   * Whether the client renews its token on its own. Default `true`. With `false`, `rotateToken()`
   * still works and a token provider is still asked again after the controller rejects its token.
   */
  enabled?: boolean;
}

/** Options of {@link TokenManager}. */
export interface TokenManagerOptions {
  /** A fixed token, renewed with RotateToken, or a provider that the manager calls instead. */
  token: string | TokenProvider;
  /** Sends RotateToken with the current token. */
  rotate(): Promise<RotatedToken>;
  /** Awaited after each RotateToken result that the client switched to. */
  onTokenRotated?: (rotated: RotatedToken) => void | Promise<void>;
  rotation?: TokenRotationOptions;
  /** Shared storage to check before rotating and to write rotated tokens to. Default: none. */
  store?: TokenStore;
  logger: Logger;
  /** Clock in milliseconds since the epoch. Default `Date.now`. */
  now?: () => number;
  /** Delay before the first retry of a failed renewal, in milliseconds. Default 5,000, doubled per failure. */
  retryDelayMs?: number;
  /** Cap of the retry delay, in milliseconds. Default 300,000. */
  maxRetryDelayMs?: number;
  /** Random numbers in [0, 1) for retry jitter. Default `Math.random`. */
  random?: () => number;
}

/** The token in use, with the times that decide when to renew it. */
interface HeldToken {
  token: string;
  /** Undefined when the token's expiry is unknown: such a token is never renewed automatically. */
  expiresAt: Date | undefined;
  /** Epoch milliseconds from which the token is due for renewal. */
  renewAt: number | undefined;
}

type RenewalKind = "rotate" | "provide" | "force";

/** The manager's lifecycle. Calls read it to decide whether to start a renewal or wait for one. */
type RenewalState =
  /** Waiting for the held token's renewal time, forever when its expiry is unknown. */
  | { phase: "waiting" }
  /** A renewal is in flight, and every caller shares its promise. */
  | { phase: "renewing"; kind: RenewalKind; flight: Promise<HeldToken>; failures: number }
  /** The last automatic renewal failed transiently, and the next one may start at `retryAt`. */
  | { phase: "backing-off"; retryAt: number; failures: number }
  /** An automatic renewal failed permanently; the held token is used until it expires. */
  | { phase: "stopped" }
  | { phase: "closed" };

/** Outcome of one renewal step, before the manager switches to it. */
interface Renewal {
  held: HeldToken;
  /** Set when the client switches to a token from RotateToken, so `onTokenRotated` must hear of it. */
  rotated?: RotatedToken;
  /** Log message for after the switch, when the token came from the store. */
  note?: string;
}

/** The RPC method that must use the current token as it is, because it is how tokens are renewed. */
const ROTATE_TOKEN_METHOD = "RotateToken";

// setTimeout takes at most 2^31 - 1 ms (about 24.8 days); a longer wait is chained.
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * Keeps a client's bearer token valid.
 *
 * A fixed token is rotated with RotateToken once its remaining lifetime falls under the renewal
 * threshold (see `renewalThresholdMs`); a provider is asked again instead. Concurrent calls share one
 * renewal. Calls go on with the current token while a renewal runs, unless the token expires
 * within 30 seconds, and then they wait for the new one. An unref'd timer starts the renewal of an
 * idle client without keeping the process alive. A transient failure keeps the token and retries
 * with backoff. A permanent failure is logged once and ends automatic renewal for this manager.
 */
export class TokenManager {
  readonly #provider: TokenProvider | undefined;
  readonly #rotate: () => Promise<RotatedToken>;
  readonly #onTokenRotated: ((rotated: RotatedToken) => void | Promise<void>) | undefined;
  readonly #store: TokenStore | undefined;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #enabled: boolean;
  readonly #renewBeforeMs: number;
  readonly #retry: { initialMs: number; maxMs: number; random: () => number };

  #held: HeldToken | undefined;
  #state: RenewalState = { phase: "waiting" };
  #timer: NodeJS.Timeout | undefined;
  #warnedExpired = false;

  constructor(options: TokenManagerOptions) {
    this.#rotate = options.rotate;
    this.#onTokenRotated = options.onTokenRotated;
    this.#store = options.store;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#enabled = options.rotation?.enabled ?? true;
    this.#renewBeforeMs = validateRenewBeforeMs(options.rotation?.renewBeforeMs);
    this.#retry = {
      initialMs: options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS,
      maxMs: options.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS,
      random: options.random ?? Math.random,
    };

    if (typeof options.token === "function") {
      this.#provider = options.token;
    } else {
      this.#held = this.#hold(options.token, undefined);
      this.#schedule();
    }
  }

  /** Expiry of the token in use, when known. */
  get expiresAt(): Date | undefined {
    return this.#held?.expiresAt;
  }

  /**
   * Returns the token for the next call to `method`, and starts a renewal when the token is due.
   * It waits only when the token expires within 30 seconds and a renewal can replace it, or when a
   * provider has not yet returned its first token. RotateToken always gets the held token at once.
   */
  token(method: string): string | Promise<string> {
    const held = this.#held;
    if (held === undefined) return this.#firstToken();
    if (method === ROTATE_TOKEN_METHOD) return held.token;

    const now = this.#now();
    this.#startRenewalIfDue(now);
    const state = this.#state;
    if (state.phase === "renewing" && this.#remainingMs(held, now) < TOKEN_EXPIRY_MARGIN_MS) {
      // A failed renewal has already been logged; the call goes on with the token it has.
      return state.flight.then(
        (renewed) => renewed.token,
        () => this.#held?.token ?? held.token,
      );
    }
    return held.token;
  }

  /**
   * Rotates the token now with RotateToken, or joins a rotation in flight, and switches later calls
   * to the result. `onTokenRotated` is awaited, and its failure rejects this call, after the switch.
   *
   * @param send sends RotateToken, for a caller with its own call options. Default: the `rotate` option.
   */
  async rotateNow(send: () => Promise<RotatedToken> = this.#rotate): Promise<RotatedToken> {
    let state = this.#state;
    if (state.phase === "renewing" && state.kind !== "rotate") {
      await state.flight.catch(() => undefined);
      state = this.#state;
    }
    const flight = state.phase === "renewing" && state.kind === "rotate" ? state.flight : this.#begin("rotate", false, send);
    const held = await flight;
    return { token: held.token, expiresAt: held.expiresAt };
  }

  /**
   * Decides whether a call that was sent with `sentToken` and failed with `error` should be sent
   * once more. Only a client with a token provider can recover from an authentication failure.
   * Returns `true` when the token has changed since the call was sent, or when the provider,
   * called with `forceRefresh: true`, returns a different one.
   */
  async refreshAfterAuthFailure(error: unknown, sentToken: string | undefined): Promise<boolean> {
    if (this.#provider === undefined || this.#state.phase === "closed") return false;
    // TokenExpiredError is an UnauthenticatedError too.
    // Without a sent token the call never reached the controller, for example because the provider failed.
    if (!(error instanceof UnauthenticatedError) || sentToken === undefined) return false;

    const changed = (): boolean => this.#held !== undefined && this.#held.token !== sentToken;
    if (changed()) return true;
    const state = this.#state;
    const flight = state.phase === "renewing" ? state.flight : this.#begin("force", false);
    try {
      await flight;
    } catch {
      return false;
    }
    return changed();
  }

  /** Stops the timer and every later renewal. A renewal in flight is left to fail with the closed client. */
  close(): void {
    this.#state = { phase: "closed" };
    this.#clearTimer();
  }

  async #firstToken(): Promise<string> {
    const state = this.#state;
    const flight = state.phase === "renewing" ? state.flight : this.#begin("provide", false);
    return (await flight).token;
  }

  #startRenewalIfDue(now: number): boolean {
    const held = this.#held;
    if (!this.#enabled || held === undefined || !this.#isDue(held, now)) return false;

    const state = this.#state;
    if (state.phase === "backing-off" && now < state.retryAt) return false;
    if (state.phase !== "waiting" && state.phase !== "backing-off") return false;

    if (this.#provider === undefined && this.#remainingMs(held, now) <= 0) {
      this.#warnExpiredOnce(held);
      return false;
    }
    void this.#begin(this.#provider === undefined ? "rotate" : "provide", true).catch(() => undefined);
    return true;
  }

  /**
   * Starts one renewal and puts it in the state, so that later callers join it. An automatic
   * renewal logs its failure and moves to backing off or stopped. Any other renewal restores the
   * earlier state and leaves the failure to its caller.
   */
  #begin(kind: RenewalKind, automatic: boolean, send: () => Promise<RotatedToken> = this.#rotate): Promise<HeldToken> {
    const before = this.#state;
    // A closed client's RotateToken fails with ClientClosedError, and the state stays closed.
    if (before.phase === "closed") return this.#renew(kind, automatic, send).then((renewal) => renewal.held);
    const failures = before.phase === "backing-off" ? before.failures : 0;
    this.#clearTimer();

    const flight = this.#renew(kind, automatic, send).then(
      (renewal) => this.#finishRenewal(renewal, failures, automatic),
      (error: unknown) => this.#failRenewal(error, before, failures, automatic),
    );
    // Callers that do not wait (calls inside the renewal window) must not leave a rejection unhandled.
    flight.catch(() => undefined);
    this.#state = { phase: "renewing", kind, flight, failures };
    return flight;
  }

  async #renew(kind: RenewalKind, automatic: boolean, send: () => Promise<RotatedToken>): Promise<Renewal> {
    if (kind !== "rotate") {
      const provided = await requestProvidedToken(this.#provider!, kind === "force");
      return { held: this.#hold(provided.token, provided.expiresAt) };
    }

    if (this.#store === undefined) {
      const rotated = await send();
      return { held: this.#hold(rotated.token, rotated.expiresAt), rotated };
    }
    // Processes that share the store rotate one at a time, so the later ones find the new token.
    return this.#store.exclusive(() => this.#rotateWithStore(automatic, send));
  }

  async #rotateWithStore(automatic: boolean, send: () => Promise<RotatedToken>): Promise<Renewal> {
    // An explicit rotateToken() requests a new token, so only automatic renewals look for one in the store.
    const adopted = automatic ? await this.#adoptStoredToken() : undefined;
    if (adopted !== undefined) return { held: adopted, note: "loaded the token that another process wrote to the config file" };

    const rotated = await send();
    const stored = await this.#saveToStore(rotated.token);
    if (stored !== rotated.token) {
      return { held: this.#hold(stored, undefined), note: "token rotated, but another process wrote a newer token to the config file first; using that one" };
    }
    return { held: this.#hold(rotated.token, rotated.expiresAt), rotated };
  }

  async #finishRenewal(renewal: Renewal, failures: number, automatic: boolean): Promise<HeldToken> {
    if (this.#state.phase === "closed") return renewal.held;

    this.#held = renewal.held;
    const now = this.#now();
    // A token that is due already (a provider that returned its cached token again) is retried
    // after a backoff delay rather than at once, so that no loop of renewals can start.
    this.#state =
      this.#enabled && this.#isDue(renewal.held, now)
        ? { phase: "backing-off", retryAt: this.#retryAt(failures + 1, now, renewal.held), failures: failures + 1 }
        : { phase: "waiting" };
    this.#schedule();

    if (renewal.note !== undefined) this.#logger.info(renewal.note, { file: this.#store?.location });
    if (renewal.rotated !== undefined) {
      this.#logger.info("rotated the client token", { expiresAt: renewal.rotated.expiresAt?.toISOString() });
      await this.#notifyRotated(renewal.rotated, automatic);
    }
    return renewal.held;
  }

  #failRenewal(error: unknown, before: RenewalState, failures: number, automatic: boolean): never {
    if (this.#state.phase === "closed") throw error;

    const held = this.#held;
    const message = this.#scrub(error instanceof Error ? error.message : String(error));
    if (!automatic) {
      this.#state = before;
      this.#schedule();
      throw error;
    }

    const expiry = held?.expiresAt ? ` The current token works until ${held.expiresAt.toISOString()}.` : "";
    if (isTransientRenewalFailure(error)) {
      const now = this.#now();
      const retryAt = this.#retryAt(failures + 1, now, held);
      this.#state = { phase: "backing-off", retryAt, failures: failures + 1 };
      this.#logger.warn(`token renewal failed; retrying in ${Math.ceil((retryAt - now) / 1000)} s: ${message}.${expiry}`, {
        failures: failures + 1,
        retryAt: new Date(retryAt).toISOString(),
      });
    } else {
      this.#state = { phase: "stopped" };
      this.#logger.warn(
        `token renewal failed and this client will not try again: ${message}.${expiry} Before then, obtain a new token with \`jmp login\` or from an administrator.`,
      );
    }
    this.#schedule();
    throw error;
  }

  async #notifyRotated(rotated: RotatedToken, automatic: boolean): Promise<void> {
    if (this.#onTokenRotated === undefined) return;
    try {
      await this.#onTokenRotated(rotated);
    } catch (error) {
      if (!automatic) throw error;
      // The client already uses the new token; only the caller's copy of it is stale.
      const message = this.#scrub(error instanceof Error ? error.message : String(error));
      this.#logger.warn(`onTokenRotated failed after a token rotation: ${message}`);
    }
  }

  // Another process that shares the config file may have rotated the token already. Its token is
  // as good as a new one, so loading it saves a RotateToken call.
  async #adoptStoredToken(): Promise<HeldToken | undefined> {
    if (this.#store === undefined) return undefined;
    let stored: string | undefined;
    try {
      stored = await this.#store.readChanged();
    } catch (error) {
      this.#logger.warn(`could not read the token from ${this.#store.location}: ${this.#scrub(String((error as Error)?.message ?? error))}`);
      return undefined;
    }
    if (stored === undefined || stored === this.#held?.token) return undefined;

    const held = this.#hold(stored, undefined);
    if (this.#isDue(held, this.#now())) return undefined;
    return held;
  }

  // Writes the rotated token to the store. A failed write keeps the new token in memory only: the
  // old token in the store stays valid until it expires, and the next rotation writes again.
  async #saveToStore(token: string): Promise<string> {
    if (this.#store === undefined) return token;
    try {
      return await this.#store.save(token);
    } catch (error) {
      const message = this.#scrub(String((error as Error)?.message ?? error));
      this.#logger.warn(`could not write the rotated token to ${this.#store.location}; it is kept in memory only: ${message}`);
      return token;
    }
  }

  #hold(token: string, expiresAt: Date | undefined): HeldToken {
    const times = readTokenTimes(token);
    const expiry = expiresAt ?? times.expiresAt;
    if (expiry === undefined) return { token, expiresAt: undefined, renewAt: undefined };

    // Without an `iat` claim the lifetime counts from now, when the token was obtained.
    const issuedAt = times.issuedAt ?? new Date(this.#now());
    const thresholdMs = renewalThresholdMs({ issuedAt, expiresAt: expiry }, this.#renewBeforeMs);
    return { token, expiresAt: expiry, renewAt: expiry.getTime() - thresholdMs };
  }

  #isDue(held: HeldToken, now: number): boolean {
    if (held.renewAt === undefined) return false;
    return now >= held.renewAt || this.#remainingMs(held, now) < TOKEN_EXPIRY_MARGIN_MS;
  }

  #remainingMs(held: HeldToken, now: number): number {
    return held.expiresAt === undefined ? Infinity : held.expiresAt.getTime() - now;
  }

  // The next retry, but no later than the start of the last 30 seconds, when calls begin to wait.
  #retryAt(failures: number, now: number, held: HeldToken | undefined): number {
    const retryAt = now + retryDelayMs(failures, this.#retry);
    if (held?.expiresAt === undefined) return retryAt;
    return Math.max(now, Math.min(retryAt, held.expiresAt.getTime() - TOKEN_EXPIRY_MARGIN_MS));
  }

  /** Arms the timer for the next renewal of an idle client, or for the next retry. */
  #schedule(): void {
    this.#clearTimer();
    const wakeAt = this.#nextWakeAt();
    if (wakeAt === undefined) return;

    const delayMs = Math.min(MAX_TIMER_DELAY_MS, Math.max(0, wakeAt - this.#now()));
    this.#timer = setTimeout(() => this.#onTimer(), delayMs);
    // The timer must not keep a script alive that has finished its work.
    this.#timer.unref?.();
  }

  #nextWakeAt(): number | undefined {
    const held = this.#held;
    if (!this.#enabled || held === undefined || held.renewAt === undefined) return undefined;
    // An expired fixed token cannot rotate itself, so there is nothing left to wake for.
    if (this.#provider === undefined && this.#remainingMs(held, this.#now()) <= 0) return undefined;
    if (this.#state.phase === "waiting") return held.renewAt;
    if (this.#state.phase === "backing-off") return this.#state.retryAt;
    return undefined;
  }

  #onTimer(): void {
    this.#timer = undefined;
    const now = this.#now();
    if (this.#startRenewalIfDue(now)) return;
    // A wait longer than the maximum timer delay was cut short: arm the next stretch.
    const wakeAt = this.#nextWakeAt();
    if (wakeAt !== undefined && wakeAt > now) this.#schedule();
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #warnExpiredOnce(held: HeldToken): void {
    if (this.#warnedExpired) return;
    this.#warnedExpired = true;
    this.#logger.warn(
      `the client token expired at ${held.expiresAt?.toISOString()} and cannot rotate itself; obtain a new token with \`jmp login\` or from an administrator.`,
    );
  }

  // Error texts from a provider or a callback are the user's, so the held token is removed from
  // them by value, as well as anything that looks like a JWT.
  #scrub(text: string): string {
    const token = this.#held?.token;
    const plain = token ? text.split(token).join("[redacted]") : text;
    return redactSecrets(plain);
  }
}

function validateRenewBeforeMs(value: number | undefined): number {
  if (value === undefined) return DEFAULT_RENEW_BEFORE_MS;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(`invalid tokenRotation.renewBeforeMs ${String(value)}: expected a number of milliseconds >= 0.`);
  }
  return value;
}
