import { once } from 'node:events';
import type { ServerWritableStream } from '@grpc/grpc-js';

/**
 * Writes one message, waiting for `drain` when the stream's buffer is full (grpc-js buffers 16
 * messages a stream before it says so). False if cancelled. For small messages (feed events).
 */
export async function send<Res>(call: ServerWritableStream<unknown, Res>, message: Res): Promise<boolean> {
  if (call.cancelled) return false;
  if (!call.write(message)) {
    await Promise.race([once(call, 'drain'), once(call, 'cancelled')]);
  }
  return !call.cancelled;
}

/**
 * Writes one message and waits until HTTP/2 has taken it (its write completed: the peer's flow
 * control window let it out), so the stream holds at most this one message. For large messages
 * (export chunks): with `send`, 16 of them would wait in memory per stream, and a herd of slow
 * downloads would hold the whole file once per daemon. False if cancelled.
 */
export async function sendFlowControlled<Res>(call: ServerWritableStream<unknown, Res>, message: Res): Promise<boolean> {
  if (call.cancelled) return false;
  const cancelled = new AbortController();
  const written = new Promise<void>((resolve) => call.write(message, () => resolve()));
  await Promise.race([written, once(call, 'cancelled', { signal: cancelled.signal }).catch(() => undefined)]);
  cancelled.abort();
  return !call.cancelled;
}
