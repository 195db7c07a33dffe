// Preloaded by bun test (bunfig.toml). Keep silo's own environment out of the tests.
delete process.env.SILO_HOME;
delete process.env.SILO_DRIVER;
delete process.env.SILO_DEBUG;
delete process.env.SILO_REGISTRY;
