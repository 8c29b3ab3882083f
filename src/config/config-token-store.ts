import type { TokenStore } from "../credentials/token-store.js";
import { withFileLock, type FileLockOptions } from "./file-lock.js";
import { readTokenFromFile, writeTokenToFile, type WriteBackFileSystem } from "./token-write-back.js";

/**
 * The token of a `jmp` client config file, shared with other processes that use the same file.
 * It remembers the token it last read or wrote, so it can tell when another process rotated it.
 */
export class ConfigFileTokenStore implements TokenStore {
  readonly location: string;
  readonly #fileSystem: WriteBackFileSystem | undefined;
  readonly #lock: FileLockOptions | undefined;
  #synced: string;

  /**
   * @param file path of the client config file.
   * @param loaded the token that was read from the file when the client was created.
   */
  constructor(file: string, loaded: string, options: { fileSystem?: WriteBackFileSystem; lock?: FileLockOptions } = {}) {
    this.location = file;
    this.#synced = loaded;
    this.#fileSystem = options.fileSystem;
    this.#lock = options.lock;
  }

  exclusive<T>(task: () => Promise<T>): Promise<T> {
    return withFileLock(this.location, task, this.#lock);
  }

  async readChanged(): Promise<string | undefined> {
    const stored = await readTokenFromFile(this.location, this.#fileSystem);
    if (stored === undefined || stored === this.#synced) return undefined;
    this.#synced = stored;
    return stored;
  }

  async save(token: string): Promise<string> {
    this.#synced = await writeTokenToFile(this.location, this.#synced, token, this.#fileSystem);
    return this.#synced;
  }
}
