//! The `responses` table: Responses API answers kept for `previous_response_id`, per token.

use crate::values::args;
use crate::Conn;

use crate::DbResult;

/// A stored response: its turn's items (input and output), the response it continued, and the
/// response object itself, as JSON text exactly as the router wrote them.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredResponse {
    pub id: String,
    pub token_id: i64,
    pub created_at_ms: i64,
    pub previous_id: Option<String>,
    pub items: String,
    pub response: String,
}

pub fn insert(connection: &Conn, stored: &StoredResponse) -> DbResult<()> {
    connection.engine().execute(
        "INSERT INTO responses (id, token_id, created_at_ms, previous_id, items, response) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET token_id = excluded.token_id, \
         created_at_ms = excluded.created_at_ms, previous_id = excluded.previous_id, items = excluded.items, \
         response = excluded.response",
        args![stored.id, stored.token_id, stored.created_at_ms, stored.previous_id, stored.items, stored.response],
    )?;
    Ok(())
}

/// The response `id` if `token_id` stored it: one token never sees another's conversations.
pub fn get(connection: &Conn, id: &str, token_id: i64) -> DbResult<Option<StoredResponse>> {
    connection.engine().query_opt(
        "SELECT id, token_id, created_at_ms, previous_id, items, response FROM responses \
         WHERE id = ?1 AND token_id = ?2",
        args![id, token_id],
        |row| {
            Ok(StoredResponse {
                id: row.get(0)?,
                token_id: row.get(1)?,
                created_at_ms: row.get(2)?,
                previous_id: row.get(3)?,
                items: row.get(4)?,
                response: row.get(5)?,
            })
        },
    )
}

pub fn delete(connection: &Conn, id: &str, token_id: i64) -> DbResult<bool> {
    Ok(connection.engine().execute("DELETE FROM responses WHERE id = ?1 AND token_id = ?2", args![id, token_id])? > 0)
}

/// Deletes up to `limit` responses older than `cutoff_ms`; returns how many went.
pub fn prune_before(connection: &Conn, cutoff_ms: i64, limit: usize) -> DbResult<usize> {
    let deleted = connection.engine().execute(
        "DELETE FROM responses WHERE id IN (SELECT id FROM responses WHERE created_at_ms < ?1 LIMIT ?2)",
        args![cutoff_ms, limit],
    )?;
    Ok(deleted as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Db;

    #[test]
    fn responses_are_kept_per_token_and_pruned_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("b.db")).unwrap();
        let stored = |id: &str, token_id, created_at_ms| StoredResponse {
            id: id.into(),
            token_id,
            created_at_ms,
            previous_id: None,
            items: "[]".into(),
            response: format!("{{\"id\":\"{id}\"}}"),
        };
        db.write(|c| insert(c, &stored("resp_old", 1, 100))).unwrap();
        db.write(|c| insert(c, &stored("resp_new", 1, 5_000))).unwrap();
        assert_eq!(db.read(|c| get(c, "resp_new", 1)).unwrap(), Some(stored("resp_new", 1, 5_000)));
        assert_eq!(db.read(|c| get(c, "resp_new", 2)).unwrap(), None, "another token does not see it");
        assert!(!db.write(|c| delete(c, "resp_new", 2)).unwrap());
        assert_eq!(db.write(|c| prune_before(c, 1_000, 10)).unwrap(), 1);
        assert_eq!(db.read(|c| get(c, "resp_old", 1)).unwrap(), None);
        assert!(db.write(|c| delete(c, "resp_new", 1)).unwrap());
        assert_eq!(db.read(|c| get(c, "resp_new", 1)).unwrap(), None);
    }
}
