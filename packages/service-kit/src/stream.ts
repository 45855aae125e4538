import { once } from 'node:events';
import type { ServerWritableStream } from '@grpc/grpc-js';

/** Writes one message, waiting for `drain` when the transport buffer is full. False if cancelled. */
export async function send<Res>(call: ServerWritableStream<unknown, Res>, message: Res): Promise<boolean> {
  if (call.cancelled) return false;
  if (!call.write(message)) {
    await Promise.race([once(call, 'drain'), once(call, 'cancelled')]);
  }
  return !call.cancelled;
}
