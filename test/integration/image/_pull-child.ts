// A separate process pulling one image (for the concurrency and rootless tests): prints the result as JSON.
import { homePaths } from "../../../src/core/paths.ts";
import { pullImage } from "../../../src/image/pull.ts";

const [home, ref, mirror] = process.argv.slice(2);
const r = await pullImage(ref!, { home: homePaths(home!), mirrors: mirror ? { "docker.io": mirror } : {}, quiet: true });
const { removeRootfs } = await import("../../../src/image/local.ts");
if (process.env.REMOVE_AFTER) removeRootfs(r.digest, homePaths(home!));
console.log(JSON.stringify({ ...r, uid: process.getuid?.() }));
