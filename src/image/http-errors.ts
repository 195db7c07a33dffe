import { SiloError } from "../core/errors.ts";
import type { Endpoint } from "./endpoints.ts";
import { familiarName, type ImageRef } from "./ref.ts";

/** Why an in-flight request was aborted: the user's signal, or silo's own timeout. */
export class PullAbort extends Error {
  constructor(
    readonly kind: "cancelled" | "timeout",
    readonly ms = 0,
  ) {
    super(kind === "timeout" ? `timed out after ${ms / 1000} s` : "cancelled");
  }
  toSiloError(): SiloError {
    return new SiloError("E_IMAGE", "image pull cancelled", undefined, 130);
  }
}

const code = (e: unknown) => String((e as { code?: unknown })?.code ?? "");

/** Dropped connections and timeouts are worth another try; refused connections, DNS and TLS failures are not. */
export function isRetriableNetworkError(e: unknown): boolean {
  if (e instanceof PullAbort) return e.kind === "timeout";
  if (e instanceof SiloError) return false;
  return ["ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNABORTED", "UND_ERR_SOCKET", "ERR_STREAM_PREMATURE_CLOSE"].includes(code(e));
}

export function describeNetworkError(e: unknown, ep: Endpoint, timeoutMs: number): string {
  if (e instanceof PullAbort && e.kind === "timeout") return `timed out after ${Math.round(timeoutMs / 100) / 10} s waiting for ${ep.base}`;
  if (e instanceof SiloError) return e.message;
  switch (code(e)) {
    case "ECONNREFUSED":
      return `cannot connect to ${ep.base} (connection refused)`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `cannot resolve ${ep.host}`;
    case "EPROTO":
      return `TLS handshake with ${ep.base} failed (does it speak https?)`;
    case "ECONNRESET":
      return `${ep.base} closed the connection`;
  }
  const msg = e instanceof Error ? e.message : String(e);
  return `cannot reach ${ep.base}: ${msg}`;
}

interface HttpErrorContext {
  tags?: string[];
  /** The digest or tag asked for. */
  what?: string;
  usedCredentials?: boolean;
  dockerConfig?: string;
}

/** A registry's refusal, worded for the user, with what to do about it. */
export function httpError(status: number, ep: Endpoint, ref: ImageRef, kind: "manifest" | "blob" | "token", ctx: HttpErrorContext): SiloError {
  const name = familiarName(ref);
  const where = ep.mirror ? `mirror ${ep.host}` : ep.host;
  const cfg = ctx.dockerConfig ?? "~/.docker/config.json";
  if (status === 401 || status === 403) {
    const what = status === 401 ? "401 unauthorized" : "403 forbidden";
    const hint = ctx.usedCredentials
      ? `the credentials for ${ep.credentialHost} in ${cfg} were not accepted; log in again (docker login ${ep.credentialHost})`
      : `the image may be private or the name mistyped; silo reads credentials from ${cfg} (docker login ${ep.credentialHost})`;
    return new SiloError("E_IMAGE", `${where} refused access to ${ref.repository} (${what})`, hint);
  }
  if (status === 404) {
    if (kind === "manifest") {
      const tag = ref.digest ?? ref.tag ?? "latest";
      const tags = ctx.tags ?? [];
      const hint = tags.length
        ? `tags there include: ${pickTags(tags, ref.tag).join(", ")}`
        : "check the image name and tag (`silo search` lists tools)";
      return new SiloError("E_IMAGE", `image ${name} not found at ${where}: no manifest for \`${tag}\` in ${ref.repository}`, hint);
    }
    return new SiloError("E_IMAGE", `${where} has no ${kind} ${ctx.what ?? ""} in ${ref.repository}`, "the registry lost part of this image; try again later or use another mirror");
  }
  if (status === 429)
    return new SiloError("E_IMAGE", `${where} is rate-limiting pulls (429 too many requests)`, "wait a little and try again, log in (docker login) for a higher limit, or set a mirror in [images.mirrors]");
  if (status >= 500) return new SiloError("E_IMAGE", `${where} failed with ${status} while sending ${name}`, "the registry has a problem; try again later");
  return new SiloError("E_IMAGE", `${where} answered ${status} for the ${kind} of ${name}`);
}

/** Up to 12 tags, the ones sharing the wanted tag's first characters first. */
function pickTags(tags: string[], wanted?: string): string[] {
  const stem = (wanted ?? "").slice(0, 2);
  const sorted = [...tags].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  const near = sorted.filter((t) => stem && t.startsWith(stem));
  return [...new Set([...near, ...sorted])].slice(0, 12);
}
