//! Which node hosts a room: `huddle:room:{room}` holds the owner's node id, set once with
//! `SET … NX` (the first node to place a room wins), kept alive by the owner's heartbeat
//! with the registry's TTL, and deleted by the owner when the room has been empty a while.
//! A placement whose owner's record has expired names a dead node: it is deleted (only if it
//! still names that node) and the room placed anew.

use redis::aio::ConnectionManager;

use super::registry::{NodeRecord, mget, scan, ttl_ms};

pub fn room_key(room: &str) -> String {
    format!("huddle:room:{room}")
}

/// Deletes KEYS[1] if it holds ARGV[1] (a placement is released only by the node it names).
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                       return redis.call('DEL', KEYS[1]) else return 0 end";

/// Extends KEYS[1] by ARGV[2] ms if it holds ARGV[1]; 1 if it did.
const REFRESH: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                       return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

/// The least-loaded of `nodes` and `me` (this node's own, freshest record): a tie, or a
/// difference under one participant, stays on `me`, so a room stays where its first request
/// arrived unless another node is clearly less busy.
pub fn choose<'a>(me: &'a NodeRecord, nodes: &'a [NodeRecord]) -> &'a NodeRecord {
    match least_loaded_other(&me.id, nodes) {
        Some(other) if other.load() + 1.0 <= me.load() => other,
        _ => me,
    }
}

/// The least-loaded of `nodes` other than node `me` (ties: the smaller id).
pub fn least_loaded_other<'a>(me: &str, nodes: &'a [NodeRecord]) -> Option<&'a NodeRecord> {
    nodes
        .iter()
        .filter(|n| n.id != me)
        .min_by(|a, b| a.load().total_cmp(&b.load()).then_with(|| a.id.cmp(&b.id)))
}

/// The node id a room is placed on, if any.
pub async fn owner(conn: &mut ConnectionManager, room: &str) -> redis::RedisResult<Option<String>> {
    redis::cmd("GET")
        .arg(room_key(room))
        .query_async(conn)
        .await
}

/// Places `room` on `node` unless it is placed already; true if this call placed it.
pub async fn claim(
    conn: &mut ConnectionManager,
    room: &str,
    node: &str,
) -> redis::RedisResult<bool> {
    let set: Option<String> = redis::cmd("SET")
        .arg(room_key(room))
        .arg(node)
        .arg("NX")
        .arg("PX")
        .arg(ttl_ms())
        .query_async(conn)
        .await?;
    Ok(set.is_some())
}

/// Extends `node`'s placement of `room`; false if the room is not placed on `node`.
pub async fn refresh(
    conn: &mut ConnectionManager,
    room: &str,
    node: &str,
) -> redis::RedisResult<bool> {
    let n: i64 = redis::cmd("EVAL")
        .arg(REFRESH)
        .arg(1)
        .arg(room_key(room))
        .arg(node)
        .arg(ttl_ms())
        .query_async(conn)
        .await?;
    Ok(n == 1)
}

/// Removes the placement of `room` if it names `node`.
pub async fn release(
    conn: &mut ConnectionManager,
    room: &str,
    node: &str,
) -> redis::RedisResult<bool> {
    let n: i64 = redis::cmd("EVAL")
        .arg(RELEASE)
        .arg(1)
        .arg(room_key(room))
        .arg(node)
        .query_async(conn)
        .await?;
    Ok(n == 1)
}

/// Every placement: (room, node id), by room.
pub async fn all(conn: &mut ConnectionManager) -> redis::RedisResult<Vec<(String, String)>> {
    let keys = scan(conn, "huddle:room:*").await?;
    let values = mget(conn, &keys).await?;
    Ok(keys
        .iter()
        .zip(values)
        .filter_map(|(k, v)| Some((k.strip_prefix("huddle:room:")?.to_owned(), v?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, participants: usize) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            participants,
            ..NodeRecord::default()
        }
    }

    #[test]
    fn rooms_go_to_the_clearly_least_loaded_node() {
        let nodes = vec![node("a", 5), node("b", 1), node("c", 3)];
        assert_eq!(choose(&node("a", 5), &nodes).id, "b");
        assert_eq!(choose(&node("c", 3), &nodes).id, "b");
        // Equal, or less than one participant apart: stays on the node asked.
        assert_eq!(choose(&node("b", 1), &nodes).id, "b");
        let even = vec![node("a", 0), node("b", 0)];
        assert_eq!(choose(&node("b", 0), &even).id, "b");
        // Alone (or Redis knows no one else yet).
        assert_eq!(choose(&node("z", 9), &[]).id, "z");
    }
}
