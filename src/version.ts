/** Set at build time by scripts/build.ts (--define); the package.json version in development. */
declare const SILO_VERSION: string | undefined;
export const VERSION: string = typeof SILO_VERSION === "string" ? SILO_VERSION : "0.1.0-dev";

/**
 * Identifies one build (scripts/build.ts: the commit and the build time). Caches of resolved data key on it,
 * so two builds with one version number never read each other's entries (their shapes may differ).
 */
declare const SILO_BUILD: string | undefined;
export const BUILD: string = typeof SILO_BUILD === "string" ? SILO_BUILD : `dev-${VERSION}`;

/** The commit built (scripts/build.ts), printed by `silo --version`; "dev" when run from source. */
declare const SILO_COMMIT: string | undefined;
export const COMMIT: string = typeof SILO_COMMIT === "string" ? SILO_COMMIT : "dev";
