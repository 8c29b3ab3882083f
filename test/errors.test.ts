import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  AlreadyExistsError,
  CanceledError,
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  JumpstarterError,
  NotFoundError,
  PageTokenExpiredError,
  PermissionDeniedError,
  TokenExpiredError,
  UnauthenticatedError,
  UnavailableError,
  isJumpstarterError,
} from "../src/index.js";
import { isConnectionError, redactSecrets, toJumpstarterError } from "../src/errors.js";

const context = { operation: "get lease", resource: "namespaces/lab/leases/abc" };

describe("errors", () => {
  describe("toJumpstarterError", () => {
    it.each([
      [Code.NotFound, "x", NotFoundError, false],
      [Code.AlreadyExists, "x", AlreadyExistsError, false],
      [Code.PermissionDenied, "namespace mismatch", PermissionDeniedError, false],
      [Code.Unauthenticated, "bad token", UnauthenticatedError, false],
      [Code.Unauthenticated, "token is expired", TokenExpiredError, false],
      [Code.InvalidArgument, "x", InvalidArgumentError, false],
      [Code.FailedPrecondition, "already released", FailedPreconditionError, false],
      [Code.Unavailable, "connection refused", UnavailableError, true],
      [Code.DeadlineExceeded, "x", DeadlineExceededError, false],
      [Code.Canceled, "x", CanceledError, false],
      [Code.Internal, "boom", JumpstarterError, false],
      [Code.ResourceExhausted, "x", JumpstarterError, false],
      [Code.Unimplemented, "x", JumpstarterError, false],
      [Code.Aborted, "x", JumpstarterError, false],
      [Code.OutOfRange, "x", JumpstarterError, false],
      [Code.DataLoss, "x", JumpstarterError, false],
    ])("maps code %i with %j", (code, message, type, retryable) => {
      const error = toJumpstarterError(new ConnectError(message, code), context);
      expect(error).toBeInstanceOf(type);
      expect(error.code).toBe(code);
      expect(error.retryable).toBe(retryable);
      expect(error.resource).toBe(context.resource);
      expect(error.cause).toBeInstanceOf(ConnectError);
    });

    it.each([
      ['leases.jumpstarter.dev "abc" not found', NotFoundError],
      ['exporters.jumpstarter.dev "rpi4" not found', NotFoundError],
      ['leases.jumpstarter.dev "abc" already exists', AlreadyExistsError],
      ["token is expired", TokenExpiredError],
      ['token has invalid claims: token is expired', TokenExpiredError],
      [
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue value from the 410 Gone response.",
        PageTokenExpiredError,
      ],
      ["permission denied", PermissionDeniedError],
      ["update lease: permission denied", PermissionDeniedError],
      ["something else broke", JumpstarterError],
    ])("classifies UNKNOWN %j", (message, type) => {
      const error = toJumpstarterError(new ConnectError(message, Code.Unknown), context);
      expect(error.constructor).toBe(type);
      expect(error.code).toBe(Code.Unknown);
      expect(error.rawMessage).toBe(message);
    });

    it("names the operation and resource", () => {
      const error = toJumpstarterError(new ConnectError('leases.jumpstarter.dev "abc" not found', Code.Unknown), context);
      expect(error.message).toBe(
        'get lease "namespaces/lab/leases/abc" failed: leases.jumpstarter.dev "abc" not found. Check the name; list the resources to see which exist.',
      );
    });

    it("says when the token expired", () => {
      const error = toJumpstarterError(new ConnectError("token is expired", Code.Unknown), {
        ...context,
        tokenExpiresAt: new Date("2026-01-01T00:00:00Z"),
      }) as TokenExpiredError;
      expect(error.message).toContain("expired at 2026-01-01T00:00:00.000Z");
      expect(error.message).toContain("jmp login");
      expect(error.expiredAt?.toISOString()).toBe("2026-01-01T00:00:00.000Z");
    });

    it("passes a JumpstarterError through", () => {
      const original = new NotFoundError("gone");
      expect(toJumpstarterError(original, context)).toBe(original);
    });

    it("redacts a token in the message", () => {
      const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
      const error = toJumpstarterError(new ConnectError(`bad token ${jwt}`, Code.Unauthenticated), context);
      expect(error.message).not.toContain(jwt);
      expect(error.rawMessage).not.toContain(jwt);
    });

    it("marks a connection error retryable", () => {
      const cause = Object.assign(new Error("reset"), { code: "ECONNRESET" });
      const error = toJumpstarterError(new ConnectError("reset", Code.Internal, undefined, undefined, cause), context);
      expect(error.retryable).toBe(true);
    });

    it.each([
      ["ECONNRESET", Code.Aborted],
      ["ERR_HTTP2_GOAWAY_SESSION", Code.Internal],
    ])("maps connection error %s to UnavailableError", (nodeCode, code) => {
      const cause = Object.assign(new Error("connection lost"), { code: nodeCode });
      const error = toJumpstarterError(new ConnectError("connection lost", code, undefined, undefined, cause), context);
      expect(error).toBeInstanceOf(UnavailableError);
      expect(error.code).toBe(Code.Unavailable);
      expect(error.message).toContain("unreachable or restarting");
    });

    it("keeps a specific class over a connection cause", () => {
      const cause = Object.assign(new Error("reset"), { code: "ECONNRESET" });
      const error = toJumpstarterError(new ConnectError("too slow", Code.DeadlineExceeded, undefined, undefined, cause), context);
      expect(error).toBeInstanceOf(DeadlineExceededError);
    });
  });

  describe("isJumpstarterError", () => {
    it("accepts SDK errors", () => {
      expect(isJumpstarterError(new TokenExpiredError("x"))).toBe(true);
    });

    it("rejects other errors", () => {
      expect(isJumpstarterError(new Error("x"))).toBe(false);
      expect(isJumpstarterError(null)).toBe(false);
      expect(isJumpstarterError("x")).toBe(false);
    });

    it("accepts an error of another package copy", () => {
      const foreign = Object.defineProperty(new Error("x"), Symbol.for("@jumpstarter/sdk/JumpstarterError"), { value: true });
      expect(isJumpstarterError(foreign)).toBe(true);
    });
  });

  describe("redactSecrets", () => {
    it("hides bearer values", () => {
      expect(redactSecrets("authorization: Bearer abcdefghij.klmnopqrstu")).toBe("authorization: Bearer [redacted]");
    });

    it("keeps the words bearer token", () => {
      expect(redactSecrets("the bearer token would cross the network")).toBe("the bearer token would cross the network");
    });
  });

  describe("isConnectionError", () => {
    it("looks through causes", () => {
      const inner = Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
      expect(isConnectionError(new Error("outer", { cause: inner }))).toBe(true);
      expect(isConnectionError(new Error("plain"))).toBe(false);
    });
  });
});
