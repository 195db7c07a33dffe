import { ofetch } from "ofetch";
import { SiloError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { basicHeader, dockerCredentials, parseChallenge } from "./auth.ts";
import { planEndpoints, type Endpoint, isPlainHttpAllowed } from "./endpoints.ts";
import { MANIFEST_ACCEPT } from "./manifest.ts";
import type { ImageRef } from "./ref.ts";
import { describeNetworkError, httpError, isRetriableNetworkError, PullAbort } from "./http-errors.ts";

export interface ClientOptions {
  /** `[images.mirrors]`: registry → mirror URL(s), tried before the registry itself. Missing: none. */
  mirrors?: Record<string, string | string[]>;
  /** `[images] insecure`: hosts reachable over plain HTTP (loopback always is). Missing: none. */
  insecure?: string[];
  /** Docker's config.json for credentials; default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. */
  dockerConfig?: string;
  signal?: AbortSignal;
  /** Longest wait for response headers, and longest pause inside a body (ms). Default 30 s, or SILO_PULL_TIMEOUT seconds. */
  timeoutMs?: number;
  /** Tries per request on 429, 5xx and dropped connections (default 4). */
  attempts?: number;
  /** First backoff (ms), doubled per retry with jitter, capped at 10 s; `Retry-After` wins when given. Default 500. */
  backoffMs?: number;
}

/** A response plus the means to read its body with an idle timeout and to abort it. */
export interface Fetched {
  res: Response;
  endpoint: Endpoint;
  chunks(): AsyncGenerator<Uint8Array>;
  abort(): void;
}

const USER_AGENT = "silo (+https://github.com/silo)";
const MAX_MANIFEST = 4 << 20;

/** An OCI distribution client for one repository, over its mirrors and then the registry itself. */
export class RegistryClient {
  readonly endpoints: Endpoint[];
  readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly backoffMs: number;
  /** The endpoint that served the manifest: blobs come from the same place first. */
  private preferred?: Endpoint;

  constructor(
    readonly ref: ImageRef,
    private readonly opts: ClientOptions = {},
  ) {
    this.endpoints = planEndpoints(ref, opts.mirrors ?? {}, opts.insecure ?? []);
    const env = Number(process.env.SILO_PULL_TIMEOUT);
    this.timeoutMs = opts.timeoutMs ?? (env > 0 ? env * 1000 : 30_000);
    this.attempts = Math.max(1, opts.attempts ?? 4);
    this.backoffMs = opts.backoffMs ?? 500;
  }

  /** GET a manifest by tag or digest: its bytes, Content-Type and the endpoint that served it. */
  async getManifest(reference: string): Promise<{ bytes: Uint8Array; contentType: string; endpoint: Endpoint }> {
    return this.onEndpoints(async (ep) => {
      const f = await this.send(ep, `/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
      if (!f.res.ok) throw await this.statusError(f, "manifest", reference);
      const bytes = await this.readAll(f, MAX_MANIFEST);
      this.preferred = ep;
      return { bytes, contentType: f.res.headers.get("content-type") ?? "", endpoint: ep };
    });
  }

  /** GET a blob from `offset` (Range); status 206 means the server honoured the range. */
  async getBlob(digest: string, offset = 0): Promise<Fetched> {
    return this.onEndpoints(async (ep) => {
      const f = await this.send(ep, `/blobs/${digest}`, { range: offset > 0 ? offset : undefined });
      if (f.res.status !== 200 && f.res.status !== 206) throw await this.statusError(f, "blob", digest);
      return f;
    });
  }

  /** GET a small blob (config) whole. */
  async getSmallBlob(digest: string, max = MAX_MANIFEST): Promise<Uint8Array> {
    const f = await this.getBlob(digest);
    return this.readAll(f, max);
  }

  /** Tags of the repository, for a 404's hint; empty when the registry will not list them. */
  async listTags(ep: Endpoint): Promise<string[]> {
    try {
      const f = await this.send(ep, "/tags/list?n=200", { accept: "application/json", attempts: 1 });
      if (!f.res.ok) return (f.abort(), []);
      const doc = JSON.parse(new TextDecoder().decode(await this.readAll(f, 1 << 20))) as { tags?: unknown };
      return Array.isArray(doc.tags) ? doc.tags.filter((t): t is string => typeof t === "string") : [];
    } catch {
      return [];
    }
  }

  async readAll(f: Fetched, max: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let n = 0;
    for await (const c of f.chunks()) {
      n += c.length;
      if (n > max) throw new SiloError("E_IMAGE", `${f.endpoint.host} sent more than ${max} bytes for a ${max === MAX_MANIFEST ? "manifest" : "document"}`);
      parts.push(c);
    }
    return Buffer.concat(parts);
  }

  // --- internal ---

  /** Try the preferred endpoint, then the others in order; report the most telling failure. */
  private async onEndpoints<T>(fn: (ep: Endpoint) => Promise<T>): Promise<T> {
    const order = this.preferred ? [this.preferred, ...this.endpoints.filter((e) => e !== this.preferred)] : this.endpoints;
    const errors: { ep: Endpoint; e: unknown }[] = [];
    for (const ep of order) {
      try {
        return await fn(ep);
      } catch (e) {
        if (e instanceof PullAbort) throw e.toSiloError();
        errors.push({ ep, e });
        if (order.length > 1) log.debug(`${ep.base}: ${(e as Error).message}`);
      }
    }
    // An answer from a registry (404, 401) says more than "could not connect" from another, and a failed
    // https probe of a plain-HTTP host says nothing when its http attempt failed too.
    const telling = errors.filter((x) => !(x.ep.probe && errors.length > 1 && !(x.e instanceof SiloError && x.e.code === "E_IMAGE")));
    const best = (telling.find((x) => x.e instanceof SiloError && x.e.code === "E_IMAGE") ?? telling[0] ?? errors[0]!).e;
    const hosts = [...new Set(order.map((ep) => ep.host))];
    if (best instanceof SiloError && hosts.length > 1)
      throw new SiloError(best.code, best.message, `${best.hint ? `${best.hint}; ` : ""}tried ${order.filter((ep) => !ep.probe).map((ep) => ep.base).join(", ")}`, best.exitCode, { cause: best });
    throw best;
  }

  /** One request with auth, redirects, retries and a header timeout. */
  private async send(ep: Endpoint, path: string, o: { accept?: string; range?: number; attempts?: number }): Promise<Fetched> {
    const url = `${ep.base}/v2/${ep.repository}${path}`;
    const attempts = o.attempts ?? this.attempts;
    let authed = false;
    for (let attempt = 1; ; attempt++) {
      let f: Fetched;
      try {
        f = await this.follow(ep, url, o);
      } catch (e) {
        if (this.opts.signal?.aborted) throw new PullAbort("cancelled");
        if (attempt < attempts && isRetriableNetworkError(e)) {
          await this.backoff(attempt, undefined, `${describeNetworkError(e, ep, this.timeoutMs)}`);
          continue;
        }
        throw new SiloError(
          "E_NETWORK",
          describeNetworkError(e, ep, this.timeoutMs),
          ep.mirror
            ? `check the mirror in [images.mirrors] of your global silo.toml`
            : `check your network, or set a mirror for ${ep.registry} in [images.mirrors]; SILO_PULL_TIMEOUT=<seconds> waits longer`,
        );
      }
      const s = f.res.status;
      if (s === 401 && !authed) {
        authed = true;
        if (await this.authenticate(ep, f.res)) {
          f.abort();
          attempt--;
          continue;
        }
      }
      if ((s === 429 || s === 408 || s >= 500) && attempt < attempts) {
        f.abort();
        await this.backoff(attempt, f.res.headers.get("retry-after"), `${ep.host} answered ${s}`);
        continue;
      }
      return f;
    }
  }

  /** fetch through ofetch with manual redirects: plain HTTP stays within the allowed hosts, auth stays on its host. */
  private async follow(ep: Endpoint, first: string, o: { accept?: string; range?: number }): Promise<Fetched> {
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(new PullAbort("cancelled"));
    this.opts.signal?.addEventListener("abort", onAbort, { once: true });
    const timeout = () => ctl.abort(new PullAbort("timeout", this.timeoutMs));
    // One timer: first for the response headers, then refreshed by every body chunk (an idle timeout).
    const timer = setTimeout(timeout, this.timeoutMs);
    const done = () => {
      clearTimeout(timer);
      this.opts.signal?.removeEventListener("abort", onAbort);
    };
    try {
      let url = first;
      for (let hop = 0; hop < 6; hop++) {
        const u = new URL(url);
        if (u.protocol === "http:" && !isPlainHttpAllowed(u.host, this.opts.insecure ?? []))
          throw new SiloError("E_IMAGE", `${ep.host} redirected to plain HTTP (${u.host})`, "silo only follows plain HTTP to loopback or [images] insecure hosts");
        const headers: Record<string, string> = { "user-agent": USER_AGENT };
        if (o.accept) headers.accept = o.accept;
        if (o.range) headers.range = `bytes=${o.range}-`;
        // Credentials go only to the endpoint's own host: a CDN redirect must not see them.
        if (ep.auth && u.host === new URL(ep.base).host) headers.authorization = ep.auth;
        const res = await ofetch.raw(url, {
          headers,
          redirect: "manual",
          responseType: "stream",
          ignoreResponseError: true,
          retry: false,
          signal: ctl.signal,
          ...(ep.tlsInsecure ? { tls: { rejectUnauthorized: false } } : {}),
        } as Parameters<typeof ofetch.raw>[1]);
        const loc = res.headers.get("location");
        if (res.status >= 300 && res.status < 400 && loc) {
          await res.body?.cancel().catch(() => {});
          url = new URL(loc, url).toString();
          continue;
        }
        return {
          res,
          endpoint: ep,
          abort: () => {
            done();
            res.body?.cancel().catch(() => {});
          },
          async *chunks() {
            if (!res.body) return done();
            const reader = res.body.getReader();
            try {
              for (;;) {
                timer.refresh();
                const { done: end, value } = await reader.read();
                if (end) return;
                if (value.length) yield value;
              }
            } catch (e) {
              throw ctl.signal.aborted && ctl.signal.reason instanceof PullAbort ? ctl.signal.reason : e;
            } finally {
              done();
              reader.releaseLock();
            }
          },
        };
      }
      throw new SiloError("E_IMAGE", `${ep.host} redirected too many times`);
    } catch (e) {
      done();
      const cause = (e as { cause?: unknown }).cause;
      throw ctl.signal.aborted && ctl.signal.reason instanceof PullAbort ? ctl.signal.reason : (cause ?? e);
    }
  }

  /** Answer a 401 challenge: a bearer token from the realm, or basic credentials. False: nothing to offer. */
  private async authenticate(ep: Endpoint, res: Response): Promise<boolean> {
    const ch = parseChallenge(res.headers.get("www-authenticate") ?? "");
    const creds = dockerCredentials(ep.credentialHost, this.opts.dockerConfig);
    ep.usedCredentials = !!creds;
    if (ch?.scheme === "basic") {
      if (!creds) return false;
      ep.auth = basicHeader(creds);
      return true;
    }
    if (ch?.scheme !== "bearer" || !ch.params.realm) return false;
    const realm = new URL(ch.params.realm);
    if (realm.protocol !== "https:" && !(realm.protocol === "http:" && isPlainHttpAllowed(realm.host, this.opts.insecure ?? [])))
      throw new SiloError("E_IMAGE", `${ep.host} sends silo to a token service over plain HTTP (${realm.origin})`, "add the host to [images] insecure only if you trust the network");
    if (ch.params.service) realm.searchParams.set("service", ch.params.service);
    realm.searchParams.set("scope", ch.params.scope ?? `repository:${ep.repository}:pull`);
    log.debug(`token: ${realm.origin}${realm.pathname} for ${realm.searchParams.get("scope")}${creds ? ` as ${creds.username}` : ""}`);
    let doc: { token?: string; access_token?: string };
    try {
      doc = await ofetch(realm.toString(), {
        headers: { "user-agent": USER_AGENT, ...(creds ? { authorization: basicHeader(creds) } : {}) },
        retry: 2,
        retryDelay: this.backoffMs,
        timeout: this.timeoutMs,
        signal: this.opts.signal,
      });
    } catch (e) {
      const status = (e as { status?: number }).status;
      if (status === 401 || status === 403)
        throw httpError(status, ep, this.ref, "token", { usedCredentials: !!creds, dockerConfig: this.opts.dockerConfig });
      const cause = (e as { cause?: unknown }).cause ?? e;
      throw new SiloError("E_NETWORK", `cannot get a pull token from ${realm.host}: ${describeNetworkError(cause, ep, this.timeoutMs)}`, "check your network or the registry's status");
    }
    const token = doc?.token ?? doc?.access_token;
    if (typeof token !== "string" || !token) throw new SiloError("E_IMAGE", `the token service of ${ep.host} answered without a token`);
    ep.auth = `Bearer ${token}`;
    return true;
  }

  private async statusError(f: Fetched, kind: "manifest" | "blob", what: string): Promise<Error> {
    f.abort();
    const s = f.res.status;
    const tags = s === 404 && kind === "manifest" && !what.startsWith("sha256:") ? await this.listTags(f.endpoint) : undefined;
    return httpError(s, f.endpoint, this.ref, kind, { tags, what, usedCredentials: f.endpoint.usedCredentials, dockerConfig: this.opts.dockerConfig });
  }

  private async backoff(attempt: number, retryAfter: string | null | undefined, why: string) {
    let ms = Math.min(10_000, this.backoffMs * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5);
    const ra = retryAfter ? Number(retryAfter) : NaN;
    if (Number.isFinite(ra) && ra >= 0) ms = Math.min(ra * 1000, 30_000);
    log.debug(`${why}; retrying in ${Math.round(ms)} ms (attempt ${attempt + 1} of ${this.attempts})`);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, ms);
      this.opts.signal?.addEventListener("abort", () => (clearTimeout(t), reject(new PullAbort("cancelled").toSiloError())), { once: true });
    });
  }
}
