import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** The repository's proto/ folder (two levels above this package's src/ or dist/). */
export const PROTO_ROOT = fileURLToPath(new URL('../../../proto/', import.meta.url));

/**
 * `files` (paths under proto/) and what they import, parsed by protobufjs with field names as in
 * the .proto files; google/protobuf/*.proto come with protobufjs. For reading messages exactly as
 * sent (64-bit integers kept), where the generated code cannot.
 */
export function loadProtoRoot(files: readonly string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : path.join(PROTO_ROOT, target));
  root.loadSync([...files], { keepCase: true }).resolveAll();
  return root;
}
