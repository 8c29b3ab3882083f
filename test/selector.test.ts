import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError, buildSelector, formatSelector, parseSelector, selectorMatches } from "../src/index.js";

describe("selector", () => {
  describe("parseSelector", () => {
    it.each([
      ["", []],
      ["board=rpi4", [{ key: "board", operator: "=", values: ["rpi4"] }]],
      ["board==rpi4", [{ key: "board", operator: "=", values: ["rpi4"] }]],
      ["env!=prod", [{ key: "env", operator: "!=", values: ["prod"] }]],
      ["env in (a,b)", [{ key: "env", operator: "in", values: ["a", "b"] }]],
      ["env notin (a)", [{ key: "env", operator: "notin", values: ["a"] }]],
      ["gpu", [{ key: "gpu", operator: "exists", values: [] }]],
      ["!reserved", [{ key: "reserved", operator: "!", values: [] }]],
      ["board=", [{ key: "board", operator: "=", values: [""] }]],
      ["example.com/board=rpi4", [{ key: "example.com/board", operator: "=", values: ["rpi4"] }]],
      ["cores>3", [{ key: "cores", operator: ">", values: ["3"] }]],
      ["cores < -1", [{ key: "cores", operator: "<", values: ["-1"] }]],
      [
        " board = rpi4 , env in ( lab , ci ) ,!x",
        [
          { key: "board", operator: "=", values: ["rpi4"] },
          { key: "env", operator: "in", values: ["lab", "ci"] },
          { key: "x", operator: "!", values: [] },
        ],
      ],
    ])("accepts %j", (text, requirements) => {
      expect(parseSelector(text).requirements).toEqual(requirements);
    });

    it.each([
      ["board=rpi4,", 11, "expected a requirement after the comma"],
      ["=rpi4", 0, "expected a label key"],
      ["board rpi4", 6, "expected an operator"],
      ["env in a,b", 7, 'expected "("'],
      ["env in (a b)", 10, 'expected "," or ")"'],
      ["env in (a", 9, 'expected "," or ")"'],
      ["board=rpi 4", 10, 'expected "," between requirements'],
      ["Board_=x", 0, "invalid label key"],
      ["board=-bad", 6, "invalid label value"],
      ["a,,b", 2, "expected a label key"],
      ["!", 1, "expected a label key"],
      ["env in (a,-b)", 10, "invalid label value"],
      ["env in ()", 8, "need at least one value"],
      ["cores>x", 6, 'expected an integer after ">"'],
      ["cores<", 6, 'expected an integer after "<"'],
    ])("rejects %j at position %i", (text, position, problem) => {
      let caught: unknown;
      try {
        parseSelector(text);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(InvalidArgumentError);
      const message = (caught as Error).message;
      expect(message).toContain(`position ${position}`);
      expect(message).toContain(problem);
      expect(message).toContain(text);
    });
  });

  describe("selectorMatches", () => {
    const labels = { board: "rpi4", env: "lab", gpu: "", cores: "4" };

    it.each([
      ["", true],
      ["board=rpi4", true],
      ["board=jetson", false],
      ["board!=jetson", true],
      ["missing!=x", true],
      ["env in (lab,ci)", true],
      ["env in (ci)", false],
      ["missing in (a)", false],
      ["env notin (ci)", true],
      ["missing notin (a)", true],
      ["gpu", true],
      ["missing", false],
      ["!missing", true],
      ["!board", false],
      ["board=rpi4,env=ci", false],
      ["cores>3", true],
      ["cores>4", false],
      ["cores<5", true],
      ["board>3", false],
      ["missing<3", false],
    ])("evaluates %j as %s", (selector, expected) => {
      expect(selectorMatches(selector, labels)).toBe(expected);
    });

    it("ignores inherited properties", () => {
      expect(selectorMatches("toString", {})).toBe(false);
    });
  });

  describe("buildSelector", () => {
    it("builds every form", () => {
      expect(buildSelector({ board: "rpi4", env: ["lab", "ci"], one: ["x"], gpu: true, reserved: false })).toBe(
        "board=rpi4,env in (lab,ci),one=x,gpu,!reserved",
      );
    });

    it("rejects an empty value list", () => {
      expect(() => buildSelector({ env: [] })).toThrow(/value list for label "env" is empty/);
    });

    it("rejects an invalid value", () => {
      expect(() => buildSelector({ board: "rpi 4" })).toThrow(InvalidArgumentError);
    });
  });

  describe("formatSelector", () => {
    const key = fc.stringMatching(/^[a-z]([a-z0-9-]{0,10}[a-z0-9])?$/);
    const value = fc.stringMatching(/^([A-Za-z0-9]([A-Za-z0-9_.-]{0,8}[A-Za-z0-9])?)?$/);
    const nonEmptyValue = value.filter((text) => text.length > 0);
    const requirement = fc.oneof(
      fc.record({ key, operator: fc.constantFrom("=" as const, "!=" as const), values: fc.tuple(value).map((v) => [...v]) }),
      fc.record({ key, operator: fc.constantFrom("in" as const, "notin" as const), values: fc.array(nonEmptyValue, { minLength: 1, maxLength: 4 }) }),
      fc.record({ key, operator: fc.constantFrom("exists" as const, "!" as const), values: fc.constant([] as string[]) }),
      fc.record({ key, operator: fc.constantFrom(">" as const, "<" as const), values: fc.integer().map((n) => [String(n)]) }),
    );

    it("round-trips through parseSelector", () => {
      fc.assert(
        fc.property(fc.array(requirement, { maxLength: 5 }), (requirements) => {
          const text = formatSelector({ requirements });
          expect(parseSelector(text).requirements).toEqual(requirements);
        }),
      );
    });
  });
});
