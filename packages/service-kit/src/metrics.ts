/** Prometheus metrics (issue "Observability"): one registry per service instance, served over HTTP. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { status } from '@grpc/grpc-js';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Every series the services define starts with this (the default process metrics keep their standard names). */
export const METRIC_PREFIX = 'titanbot_';

/**
 * Upper bounds of `titanbot_rpc_duration_seconds`, in seconds: 0.25 ms (an in-memory CheckVersion)
 * to 10 s (a slow write transaction or a large download). Streams count their whole lifetime, so
 * long-lived ones (WatchVersion) land in +Inf.
 */
export const RPC_DURATION_BUCKETS = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface CodeChildren {
  /** Calls counted since the last scrape, not yet added to `requests`. */
  pending: number;
  requests: { inc(value?: number): void };
  duration: { observe(seconds: number): void };
}

/**
 * Records the calls of one RPC method. Its label children are resolved once per status code and
 * kept. The request count is a plain number added to the counter when it is scraped (`flush`):
 * prom-client's `inc` re-validates and re-hashes the labels on every call, a measurable share of
 * a CheckVersion. The histogram has no bulk update in prom-client's API, so it is observed per call.
 */
export class MethodRecorder {
  /** Indexed by numeric gRPC status code. */
  private readonly byCode: (CodeChildren | undefined)[] = [];

  constructor(
    private readonly method: string,
    private readonly requests: Counter<'method' | 'code'>,
    private readonly duration: Histogram<'method' | 'code'>,
  ) {}

  /** Counts one finished call that answered `code` after `seconds` (s). */
  record(code: status, seconds: number): void {
    let children = this.byCode[code];
    if (!children) {
      const name = status[code] ?? String(code);
      children = { pending: 0, requests: this.requests.labels(this.method, name), duration: this.duration.labels(this.method, name) };
      this.byCode[code] = children;
    }
    children.pending++;
    children.duration.observe(seconds);
  }

  /** Adds the calls counted since the last flush to the requests counter (run when it is read). */
  flush(): void {
    for (const children of this.byCode) {
      if (children === undefined || children.pending === 0) continue;
      children.requests.inc(children.pending);
      children.pending = 0;
    }
  }
}

/**
 * The metrics of one service instance: its own prom-client Registry (not the global default, so
 * several services can run in one test process), the default Node.js process metrics, and the RPC
 * series every service records: `titanbot_rpc_requests_total{method,code}` and
 * `titanbot_rpc_duration_seconds{method,code}` (method = gRPC path, code = status name).
 * Service-specific series mirror state the service keeps anyway (`gauge`, `counter`,
 * `labelledCounter`): read when scraped, so they cost nothing between scrapes.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'code'>;
  private readonly duration: Histogram<'method' | 'code'>;
  private readonly recorders = new Map<string, MethodRecorder>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const recorders = this.recorders;
    this.requests = new Counter({
      name: `${METRIC_PREFIX}rpc_requests_total`,
      help: 'Finished gRPC calls by method (gRPC path) and status code.',
      labelNames: ['method', 'code'],
      registers: [this.registry],
      // Runs before every read of the counter (scrape, get()): adds the calls counted since.
      collect() {
        for (const recorder of recorders.values()) recorder.flush();
      },
    });
    this.duration = new Histogram({
      name: `${METRIC_PREFIX}rpc_duration_seconds`,
      help: 'Duration of finished gRPC calls in seconds (a stream: its whole lifetime), by method and status code.',
      labelNames: ['method', 'code'],
      buckets: RPC_DURATION_BUCKETS,
      registers: [this.registry],
    });
  }

  /**
   * Gauge `titanbot_<name>` whose value `read` gives when scraped; `undefined` keeps the previous
   * value (e.g. a source that is briefly unreachable, rather than failing the whole scrape).
   */
  gauge(name: string, help: string, read: () => number | undefined | Promise<number | undefined>): void {
    new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      registers: [this.registry],
      async collect() {
        const value = await read();
        if (value !== undefined) this.set(value);
      },
    });
  }

  /**
   * Gauge `titanbot_<name>{<label>}` whose values by label `read` gives when scraped; `undefined`
   * keeps the previous values.
   */
  labelledGauge(name: string, help: string, label: string, read: () => Promise<Readonly<Record<string, number>> | undefined>): void {
    new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames: [label],
      registers: [this.registry],
      async collect() {
        const values = await read();
        if (values === undefined) return;
        for (const [value, n] of Object.entries(values)) this.set({ [label]: value }, n);
      },
    });
  }

  /** Counter `titanbot_<name>` mirroring a never-decreasing count that `read` gives when scraped. */
  counter(name: string, help: string, read: () => number): void {
    new Counter({
      name: `${METRIC_PREFIX}${name}`,
      help,
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  }

  /** Counter `titanbot_<name>{<label>}` mirroring never-decreasing counts by label value that `read` gives when scraped. */
  labelledCounter(name: string, help: string, label: string, read: () => Readonly<Record<string, number>>): void {
    new Counter({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames: [label],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [value, count] of Object.entries(read())) this.inc({ [label]: value }, count);
      },
    });
  }

  /** The recorder of method `path` (`/package.Service/Method`); take it once, when wrapping the handler. */
  rpc(path: string): MethodRecorder {
    let recorder = this.recorders.get(path);
    if (!recorder) {
      recorder = new MethodRecorder(path, this.requests, this.duration);
      this.recorders.set(path, recorder);
    }
    return recorder;
  }
}

export interface MetricsServer {
  /** host:port the server listens on (the bound port when asked for port 0). */
  address: string;
  /** Stops listening and drops open (keep-alive) connections. */
  close(): Promise<void>;
}

/**
 * Serves `registry` in the Prometheus text format at `GET /metrics` on `addr` (host:port, port 0 =
 * any; `[::1]:9464` for IPv6); every other path is 404. A collect callback that fails answers 500.
 * Rejects when the address cannot be bound.
 */
export async function startMetricsServer(addr: string, registry: Registry): Promise<MetricsServer> {
  const separator = addr.lastIndexOf(':');
  const host = addr.slice(0, separator).replace(/^\[(.*)\]$/, '$1');
  const port = Number(addr.slice(separator + 1));
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if ((req.method !== 'GET' && req.method !== 'HEAD') || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics collection failed: ${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host || undefined, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    address: `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
