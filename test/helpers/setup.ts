// Preloaded by bun test (bunfig.toml). Keep silo's own environment out of the tests.
delete process.env.SILO_HOME;
delete process.env.SILO_DRIVER;
delete process.env.SILO_DEBUG;
delete process.env.SILO_REGISTRY;

// Every tmp() dir (test homes, projects, the seeded image template) goes when the whole run is over.
import { afterAll } from "bun:test";
import { removeCreated } from "./silo.ts";
// Removing a seeded image template (~1 GB) can take longer than the default hook timeout on a busy disk.
afterAll(removeCreated, 600_000);
