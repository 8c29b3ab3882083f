import { Code } from "@connectrpc/connect";
import { InvalidArgumentError, JumpstarterError } from "./errors.js";

/** One page of a listing as the controller returned it. */
export interface Page<T> {
  /** Items of this page; a page may be empty and still be followed by more. */
  items: T[];
  /** Token of the next page; empty on the last page. */
  nextPageToken: string;
}

/**
 * Fetches one page. `pageSize` is the number of items to request and `signal` aborts the request
 * when the caller stops iterating.
 */
export type PageFetcher<T> = (request: { pageToken: string; pageSize: number; signal: AbortSignal }) => Promise<Page<T>>;

/** Default number of items requested per page. */
export const DEFAULT_PAGE_SIZE = 100;

/** Largest page size accepted locally; the controller caps pages at its own limit anyway. */
export const MAX_PAGE_SIZE = 10_000;

/** Options shared by the listing methods. */
export interface PaginationOptions {
  /** Items requested per page. Default 100, at most 10,000. */
  pageSize?: number;
  /** Stop after this many items in total. Default: no limit. */
  maxItems?: number;
}

/**
 * A listing that fetches pages lazily: nothing is requested until iteration starts, and at most
 * one page is fetched ahead of the caller. `for await` yields items across all pages,
 * {@link PagedIterable.byPage} yields whole pages, and {@link PagedIterable.toArray} collects.
 * Each iteration starts a new listing from the first page.
 */
export class PagedIterable<T> implements AsyncIterable<T> {
  readonly #fetchPage: PageFetcher<T>;
  readonly #pageSize: number;
  readonly #maxItems: number;
  readonly #what: string;

  /**
   * @param fetchPage fetches one page; it must not keep state between calls.
   * @param options page size and item cap, validated here so that bad values fail before any RPC.
   * @param what names the listing in error messages, such as `exporters`.
   */
  constructor(fetchPage: PageFetcher<T>, options: PaginationOptions = {}, what = "items") {
    this.#fetchPage = fetchPage;
    this.#pageSize = validateCount(options.pageSize, "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
    this.#maxItems = validateCount(options.maxItems, "maxItems", Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);
    this.#what = what;
  }

  /** Yields every item of every page, in the controller's order, up to `maxItems`. */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for await (const page of this.byPage()) {
      yield* page.items;
    }
  }

  /**
   * Yields the listing page by page. The last page is trimmed so that the total stays within
   * `maxItems`. While the caller works on one page the next one is already being fetched.
   */
  async *byPage(): AsyncGenerator<Page<T>, void, undefined> {
    const controller = new AbortController();
    const seenTokens = new Set<string>();
    let fetched = 0;
    let yielded = 0;

    const start = (pageToken: string): Promise<Page<T>> => {
      const pageSize = Math.min(this.#pageSize, this.#maxItems - fetched);
      const promise = this.#fetchPage({ pageToken, pageSize, signal: controller.signal });
      // The prefetched page may fail after the caller stopped; that failure must not go unhandled.
      promise.catch(() => {});
      return promise;
    };

    let pending: Promise<Page<T>> | undefined = start("");
    try {
      while (pending) {
        const page = await pending;
        pending = undefined;
        fetched += page.items.length;

        const token = page.nextPageToken;
        if (token !== "") {
          if (seenTokens.has(token)) {
            throw new JumpstarterError(
              `listing ${this.#what} stopped: the controller returned the same page token twice, which would loop forever. This is a controller bug; report it with the controller version.`,
              { code: Code.Internal },
            );
          }
          seenTokens.add(token);
          if (fetched < this.#maxItems) pending = start(token);
        }

        const room = this.#maxItems - yielded;
        const items = page.items.length > room ? page.items.slice(0, room) : page.items;
        yielded += items.length;
        yield { items, nextPageToken: pending ? token : "" };
        if (yielded >= this.#maxItems) return;
      }
    } finally {
      controller.abort();
    }
  }

  /** Collects every item (up to `maxItems`) into an array. */
  async toArray(): Promise<T[]> {
    const items: T[] = [];
    for await (const item of this) items.push(item);
    return items;
  }
}

function validateCount(value: number | undefined, what: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    const limit = Number.isFinite(max) ? ` and at most ${max}` : "";
    throw new InvalidArgumentError(`invalid ${what} ${String(value)}: expected a whole number of at least 1${limit}.`);
  }
  return value;
}
