import { describe, expect, test } from "bun:test";
import { JsoncError, parseJsonc, setJsoncValue, stripJsonc } from "../../../src/lsp/jsonc.ts";

const userFile = `// My VS Code settings
{
	// keep my font
	"editor.fontSize": 14, /* inline */
	"files.exclude": {
		"**/.git": true, // trailing comma below
	},
	"url": "http://example.com/a//b", // a // inside a string is not a comment
	"tricky": "a,}",
}
`;

describe("parseJsonc", () => {
  test("comments, trailing commas and comment-like strings", () => {
    expect(parseJsonc(userFile)).toEqual({
      "editor.fontSize": 14,
      "files.exclude": { "**/.git": true },
      url: "http://example.com/a//b",
      tricky: "a,}",
    });
    expect(parseJsonc("   ")).toBeUndefined();
    expect(JSON.parse(stripJsonc(`{"a": [1, 2, /* x */ ], }`))).toEqual({ a: [1, 2] });
  });
});

describe("setJsoncValue", () => {
  test("inserting a top-level key keeps every comment and the user's settings", () => {
    const out = setJsoncValue(userFile, ["python.languageServer"], "None", "silo: the sandboxed server replaces Pylance");
    for (const piece of ["// My VS Code settings", "// keep my font", "/* inline */", "// trailing comma below", "// a // inside a string"])
      expect(out).toContain(piece);
    expect(out).toContain(`\t// silo: the sandboxed server replaces Pylance\n\t"python.languageServer": "None"\n}`);
    expect(parseJsonc(out)).toEqual({ ...(parseJsonc(userFile) as object), "python.languageServer": "None" });
  });

  test("replacing an existing value changes only that value", () => {
    const out = setJsoncValue(userFile, ["editor.fontSize"], 16);
    expect(out).toBe(userFile.replace(`"editor.fontSize": 14`, `"editor.fontSize": 16`));
  });

  test("nested paths: descend into existing objects, create missing ones", () => {
    const zed = `{\n  // zed\n  "lsp": {\n    "gopls": { "initialization_options": {} } // mine\n  }\n}\n`;
    const out = setJsoncValue(zed, ["lsp", "pyright", "binary"], { path: "silo", arguments: ["lsp", "python"] });
    expect(out).toContain("// mine");
    expect(out).toContain("// zed");
    expect(parseJsonc(out)).toEqual({
      lsp: { gopls: { initialization_options: {} }, pyright: { binary: { path: "silo", arguments: ["lsp", "python"] } } },
    });
    const again = setJsoncValue(out, ["lsp", "pyright", "binary"], { path: "silo", arguments: ["lsp", "python"] });
    expect(again).toBe(out);
  });

  test("a comment at the end of the last member's line stays there", () => {
    const out = setJsoncValue(`{\n  "a": 1 // about a\n}\n`, ["b"], 2);
    expect(out).toBe(`{\n  "a": 1, // about a\n  "b": 2\n}\n`);
  });

  test("empty file, empty object, and an object holding only comments", () => {
    expect(setJsoncValue("", ["a"], { b: 1 })).toBe(`{\n  "a": { "b": 1 }\n}\n`);
    expect(parseJsonc(setJsoncValue("{}", ["a"], 1))).toEqual({ a: 1 });
    const out = setJsoncValue(`{\n  // nothing yet\n}\n`, ["a"], 1);
    expect(out).toContain("// nothing yet");
    expect(parseJsonc(out)).toEqual({ a: 1 });
  });

  test("a non-object value on the way is replaced by an object", () => {
    expect(parseJsonc(setJsoncValue(`{"lsp": null}`, ["lsp", "x"], 1))).toEqual({ lsp: { x: 1 } });
  });

  test("broken files fail with a line number instead of being overwritten", () => {
    expect(() => setJsoncValue(`{\n  "a": 1\n  "b": 2\n}`, ["c"], 3)).toThrow(JsoncError);
    expect(() => setJsoncValue(`{\n  "a": 1\n  "b": 2\n}`, ["c"], 3)).toThrow(/line 3/);
    expect(() => setJsoncValue(`[1]`, ["c"], 3)).toThrow(/not a JSON object/);
  });
});

describe("layout", () => {
  test("inline values keep string content exactly", () => {
    const v = { a: ["x[ y ]z", "q\nr"], b: {} };
    expect(parseJsonc(setJsoncValue("{}", ["k"], v))).toEqual({ k: v });
  });

  test("a one-line object is re-serialized whole when it grows; a long value is spread over lines", () => {
    expect(setJsoncValue(`{\n  "o": { "a": 1 }\n}\n`, ["o", "b"], 2)).toBe(`{\n  "o": { "a": 1, "b": 2 }\n}\n`);
    const long = setJsoncValue("{\n\t\"x\": 1\n}\n", ["list"], Array.from({ length: 12 }, (_, i) => `item-number-${i}`));
    expect(long).toContain(`\t"list": [\n\t\t"item-number-0",\n`);
    expect(long.endsWith(`\t\t"item-number-11"\n\t]\n}\n`)).toBe(true);
  });
});
