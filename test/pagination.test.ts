import { describe, expect, it } from "vitest";
import { PagedIterable, type Page } from "../src/pagination.js";
import { InvalidArgumentError, JumpstarterError } from "../src/index.js";

type Request = { pageToken: string; pageSize: number };

/** Builds a listing of `pages`, keyed by the token that fetches each page (the first page by ""). */
function fakeListing(pages: Record<string, Page<number>>) {
  const requests: Request[] = [];
  const fetchPage = async ({ pageToken, pageSize }: Request & { signal: AbortSignal }): Promise<Page<number>> => {
    requests.push({ pageToken, pageSize });
    const page = pages[pageToken];
    if (!page) throw new Error(`unexpected token ${pageToken}`);
    return page;
  };
  return { fetchPage, requests };
}

describe("PagedIterable", () => {
  describe("iteration", () => {
    it("fetches nothing before iteration", () => {
      const { fetchPage, requests } = fakeListing({ "": { items: [1], nextPageToken: "" } });
      new PagedIterable(fetchPage);
      expect(requests).toHaveLength(0);
    });

    it("yields items across pages", async () => {
      const { fetchPage } = fakeListing({
        "": { items: [1, 2], nextPageToken: "a" },
        a: { items: [3], nextPageToken: "" },
      });
      expect(await new PagedIterable(fetchPage).toArray()).toEqual([1, 2, 3]);
    });

    it("continues past an empty page with a token", async () => {
      const { fetchPage } = fakeListing({
        "": { items: [], nextPageToken: "a" },
        a: { items: [], nextPageToken: "b" },
        b: { items: [7], nextPageToken: "" },
      });
      expect(await new PagedIterable(fetchPage).toArray()).toEqual([7]);
    });

    it("fails on a repeated token", async () => {
      const { fetchPage } = fakeListing({
        "": { items: [1], nextPageToken: "a" },
        a: { items: [2], nextPageToken: "a" },
      });
      await expect(new PagedIterable(fetchPage, {}, "exporters").toArray()).rejects.toThrow(
        /listing exporters stopped: the controller returned the same page token twice/,
      );
      await expect(new PagedIterable(fetchPage).toArray()).rejects.toBeInstanceOf(JumpstarterError);
    });

    it("sends the page size", async () => {
      const { fetchPage, requests } = fakeListing({ "": { items: [1], nextPageToken: "" } });
      await new PagedIterable(fetchPage, { pageSize: 25 }).toArray();
      expect(requests).toEqual([{ pageToken: "", pageSize: 25 }]);
    });

    it("defaults the page size to 100", async () => {
      const { fetchPage, requests } = fakeListing({ "": { items: [], nextPageToken: "" } });
      await new PagedIterable(fetchPage).toArray();
      expect(requests[0]?.pageSize).toBe(100);
    });
  });

  describe("maxItems", () => {
    it("caps the total and trims the last page", async () => {
      const { fetchPage, requests } = fakeListing({
        "": { items: [1, 2, 3], nextPageToken: "a" },
        a: { items: [4, 5, 6], nextPageToken: "b" },
      });
      expect(await new PagedIterable(fetchPage, { pageSize: 3, maxItems: 5 }).toArray()).toEqual([1, 2, 3, 4, 5]);
      expect(requests).toEqual([
        { pageToken: "", pageSize: 3 },
        { pageToken: "a", pageSize: 2 },
      ]);
    });

    it("stops fetching once reached", async () => {
      const { fetchPage, requests } = fakeListing({ "": { items: [1, 2], nextPageToken: "a" } });
      expect(await new PagedIterable(fetchPage, { maxItems: 2 }).toArray()).toEqual([1, 2]);
      expect(requests).toHaveLength(1);
    });
  });

  describe("prefetch", () => {
    it("fetches at most one page ahead", async () => {
      const { fetchPage, requests } = fakeListing({
        "": { items: [1], nextPageToken: "a" },
        a: { items: [2], nextPageToken: "b" },
        b: { items: [3], nextPageToken: "c" },
        c: { items: [4], nextPageToken: "" },
      });
      const iterator = new PagedIterable(fetchPage)[Symbol.asyncIterator]();
      expect((await iterator.next()).value).toBe(1);
      await new Promise((resolve) => setImmediate(resolve));
      expect(requests.map((r) => r.pageToken)).toEqual(["", "a"]);
      expect((await iterator.next()).value).toBe(2);
      await new Promise((resolve) => setImmediate(resolve));
      expect(requests.map((r) => r.pageToken)).toEqual(["", "a", "b"]);
      await iterator.return?.();
    });

    it("aborts the prefetch when the caller stops", async () => {
      let prefetchSignal: AbortSignal | undefined;
      const iterable = new PagedIterable<number>(async ({ pageToken, signal }) => {
        if (pageToken === "") return { items: [1, 2], nextPageToken: "a" };
        prefetchSignal = signal;
        return new Promise(() => {});
      });
      for await (const item of iterable) {
        if (item === 1) break;
      }
      expect(prefetchSignal?.aborted).toBe(true);
    });
  });

  describe("options", () => {
    it.each([0, -1, 1.5, 10_001])("rejects pageSize %j", (pageSize) => {
      expect(() => new PagedIterable(async () => ({ items: [], nextPageToken: "" }), { pageSize })).toThrow(InvalidArgumentError);
    });

    it("rejects maxItems 0", () => {
      expect(() => new PagedIterable(async () => ({ items: [], nextPageToken: "" }), { maxItems: 0 })).toThrow(/invalid maxItems 0/);
    });
  });
});
