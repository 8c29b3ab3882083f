/**
 * Shared storage of a client's token, such as a `jmp` client config file, which other processes
 * may rotate as well. The token manager rotates while it holds the store's lock, checks the store
 * before rotating, and writes rotated tokens to it.
 */
export interface TokenStore {
  /** Location of the token for log messages, such as the file's path; never the token itself. */
  readonly location: string;
  /** Runs `task` while no other user of the store runs one, across processes, and returns its result. */
  exclusive<T>(task: () => Promise<T>): Promise<T>;
  /**
   * Returns the stored token when another writer changed it since this store last read or wrote
   * it, else `undefined`.
   */
  readChanged(): Promise<string | undefined>;
  /**
   * Stores `token` unless another writer changed the stored token first, and returns the token that
   * is stored afterwards: `token`, or the other writer's.
   */
  save(token: string): Promise<string>;
}

/** Key of the internal client option that carries a {@link TokenStore}; not part of the public API. */
export const TOKEN_STORE: unique symbol = Symbol("jumpstarter.tokenStore");
