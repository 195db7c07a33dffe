/** Exit codes silo itself uses (docker's convention); a tool's own code passes through unchanged. */
export const EXIT = {
  /** silo failed before the command started (bad config, pull failure, sandbox setup). */
  FAILURE: 125,
  /** The command was found but cannot be executed. */
  CANNOT_EXECUTE: 126,
  /** The command (or tool) was not found. */
  NOT_FOUND: 127,
} as const;

export type SiloErrorCode =
  | "E_USAGE"
  | "E_CONFIG"
  | "E_TRUST"
  | "E_REGISTRY"
  | "E_TOOL_NOT_INSTALLED"
  | "E_TOOL_UNKNOWN"
  | "E_IMAGE"
  | "E_DRIVER"
  | "E_SANDBOX"
  | "E_NETWORK"
  | "E_LSP"
  | "E_NOT_IMPLEMENTED"
  | "E_IO";

/** The one error type silo throws on purpose: a message for the user, an optional hint with the fix. */
export class SiloError extends Error {
  override name = "SiloError";
  constructor(
    readonly code: SiloErrorCode,
    message: string,
    readonly hint?: string,
    readonly exitCode: number = EXIT.FAILURE,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export const isSiloError = (e: unknown): e is SiloError => e instanceof SiloError;

/** A command whose engine another issue delivers: say so plainly, exit 125. */
export function notImplemented(what: string): never {
  throw new SiloError("E_NOT_IMPLEMENTED", `${what} is not implemented yet in this build of silo`);
}
