import { describe, expect, test } from "bun:test";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { commandInLayers } from "../../../src/app/lsp.ts";
import { tmp } from "../../helpers/silo.ts";

describe("commandInLayers", () => {
  const image = tmp("silo-layer-");
  const upper = tmp("silo-layer-");
  mkdirSync(join(image, "usr/bin"), { recursive: true });
  writeFileSync(join(image, "usr/bin/node"), "");
  mkdirSync(join(upper, "opt/tsls/bin"), { recursive: true });
  // An absolute link inside the image: it points into the image, not the host, and still counts.
  symlinkSync("/opt/tsls/lib/node_modules/x/cli.js", join(upper, "opt/tsls/bin/typescript-language-server"));
  const PATH = "/usr/local/bin:/usr/bin:/bin";

  test("a name on PATH in any layer, a path, and a miss", () => {
    expect(commandInLayers([image], PATH, "node")).toBe(true);
    expect(commandInLayers([image], PATH, "typescript-language-server")).toBe(false);
    expect(commandInLayers([image, upper], PATH, "/opt/tsls/bin/typescript-language-server")).toBe(true);
    expect(commandInLayers([image, upper], `${PATH}:/opt/tsls/bin`, "typescript-language-server")).toBe(true);
    expect(commandInLayers([image], PATH, "/opt/tsls/bin/typescript-language-server")).toBe(false);
  });
});
