import { describe, expect, test } from "bun:test";
import { escapeControls } from "../../../src/cli/quarantine.ts";

describe("silo quarantine show on a terminal", () => {
  test("a planted file's escape sequences are printed as text, tabs and UTF-8 kept", () => {
    expect(escapeControls("a\x1b]0;owned\x07b\tc\u009b2Jd é\r")).toBe("a\\x1b]0;owned\\x07b\tc\\x9b2Jd é\\x0d");
  });
});
