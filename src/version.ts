/** Set at build time by scripts/build.ts (--define); the package.json version in development. */
declare const SILO_VERSION: string | undefined;
export const VERSION: string = typeof SILO_VERSION === "string" ? SILO_VERSION : "0.1.0-dev";
