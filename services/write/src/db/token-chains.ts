import type { Em } from './orm.js';

/**
 * The uuids of every daemon token in `uuid`'s rotation chain: the token it was first issued as
 * (the oldest ancestor still stored, following `rotated_from_uuid`) and every token rotated from
 * that one, transitively; `uuid` itself included. Empty when `uuid` is not stored. One recursive
 * query each way; a chain grows by one row per rotation, so it stays short.
 */
export async function rotationChain(em: Em, uuid: string): Promise<string[]> {
  const rows: { uuid: string }[] = await em.execute(
    `with recursive up (uuid, rotated_from_uuid, depth) as (
       select uuid, rotated_from_uuid, 0 from daemon_tokens where uuid = ?
       union all
       select t.uuid, t.rotated_from_uuid, up.depth + 1 from daemon_tokens t join up on t.uuid = up.rotated_from_uuid
     ), root as (
       select uuid from up order by depth desc limit 1
     ), down (uuid) as (
       select uuid from root
       union all
       select t.uuid from daemon_tokens t join down on t.rotated_from_uuid = down.uuid
     )
     select uuid from down`,
    [uuid],
  );
  return rows.map((r) => r.uuid);
}
