// One pull in its own process (as `silo install` would do it), for scripts/bench/pull.ts: prints JSON.
import { homePaths } from "../../src/core/paths.ts";
import { pullImage } from "../../src/image/pull.ts";

const [home, ref, registry] = process.argv.slice(2);
const r = await pullImage(ref!, { home: homePaths(home!), mirrors: { "docker.io": registry! }, quiet: true });
console.log(JSON.stringify({ timings: r.timings, sizes: r.sizes, digest: r.digest }));
