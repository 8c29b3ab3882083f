import { Code, ConnectError } from "@connectrpc/connect";

/** One page of a list and the token of the next page, empty on the last page. */
export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

interface ContinueToken {
  after: string;
  rv: number;
}

// Kubernetes' text for a continue token whose resource version was compacted (HTTP 410 Gone). The
// controller returns it as gRPC UNKNOWN.
const EXPIRED_TOKEN_MESSAGE =
  "The provided continue parameter is too old to display a consistent list result. You can start " +
  "a new list without the continue parameter, or use the continue value from the 410 Gone response.";

/**
 * Pages through lists ordered by name with opaque continue tokens.
 *
 * A token is base64url of JSON `{ after, rv }`: the last name of the previous page and the
 * resource version that the token belongs to. {@link expireAll} raises the resource version, which
 * makes every outstanding token expired, as etcd compaction does.
 */
export class MockPaginator {
  private resourceVersion = 1;

  /** Makes every token issued so far fail with the Kubernetes "too old" error. */
  expireAll(): void {
    this.resourceVersion++;
  }

  /**
   * Returns the page after `pageToken` of `items`, which must be sorted by `nameOf`.
   * A `pageSize` of 0 returns every remaining item.
   *
   * @throws ConnectError INVALID_ARGUMENT for a negative size or a token that cannot be decoded,
   *   and UNKNOWN with the Kubernetes text for an expired token.
   */
  paginate<T>(items: readonly T[], nameOf: (item: T) => string, pageSize: number, pageToken: string): Page<T> {
    if (pageSize < 0) {
      throw new ConnectError(`invalid page_size ${pageSize}: must not be negative`, Code.InvalidArgument);
    }

    const start = pageToken === "" ? 0 : firstIndexAfter(items, nameOf, this.decode(pageToken));
    const remaining = items.length - start;
    if (pageSize === 0 || remaining <= pageSize) {
      return { items: items.slice(start), nextPageToken: "" };
    }

    const page = items.slice(start, start + pageSize);
    const last = nameOf(page[page.length - 1]!);
    return { items: page, nextPageToken: this.encode(last) };
  }

  private encode(after: string): string {
    const token: ContinueToken = { after, rv: this.resourceVersion };
    return Buffer.from(JSON.stringify(token)).toString("base64url");
  }

  private decode(pageToken: string): string {
    let token: unknown;
    try {
      token = JSON.parse(Buffer.from(pageToken, "base64url").toString("utf8"));
    } catch {
      token = undefined;
    }
    if (!isContinueToken(token)) {
      throw new ConnectError(
        `invalid page_token "${pageToken}": pass the next_page_token of the previous page, or an empty token for the first page`,
        Code.InvalidArgument,
      );
    }
    if (token.rv !== this.resourceVersion) {
      throw new ConnectError(EXPIRED_TOKEN_MESSAGE, Code.Unknown);
    }
    return token.after;
  }
}

// Binary search over the sorted items, so that a page costs O(log n + pageSize), not O(n). The
// name in the token need not be in the list any more: an item removed since then is skipped over.
function firstIndexAfter<T>(items: readonly T[], nameOf: (item: T) => string, after: string): number {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (nameOf(items[middle]!) > after) high = middle;
    else low = middle + 1;
  }
  return low;
}

function isContinueToken(value: unknown): value is ContinueToken {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return typeof candidate["after"] === "string" && typeof candidate["rv"] === "number";
}
