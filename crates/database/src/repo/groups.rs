//! The `channel_groups` and `group_members` tables.

use burncloud_service_api::{Group, GroupMember, Strategy};
use rusqlite::{params, Connection, OptionalExtension};

use crate::{Conn, DbError, DbResult};

fn members(connection: &Connection, group_id: i64) -> DbResult<Vec<GroupMember>> {
    let mut statement = connection.prepare_cached(
        "SELECT channel_id, weight, priority FROM group_members WHERE group_id = ?1 ORDER BY priority DESC, channel_id",
    )?;
    let rows = statement.query_map([group_id], |row| {
        Ok(GroupMember { channel_id: row.get(0)?, weight: row.get(1)?, priority: row.get(2)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn group_from(connection: &Connection, row: (i64, String, String, i64, i64)) -> DbResult<Group> {
    let (id, name, strategy, created_at_ms, updated_at_ms) = row;
    let strategy =
        Strategy::parse(&strategy).ok_or_else(|| DbError::Corrupt(format!("channel_groups.strategy {strategy:?}")))?;
    Ok(Group { id, name, strategy, members: members(connection, id)?, created_at_ms, updated_at_ms })
}

const COLUMNS: &str = "id, name, strategy, created_at_ms, updated_at_ms";

type GroupRow = (i64, String, String, i64, i64);

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<GroupRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
}

pub fn list(connection: &Conn) -> DbResult<Vec<Group>> {
    let connection = connection.sql();
    let rows: Vec<GroupRow> = connection
        .prepare_cached(&format!("SELECT {COLUMNS} FROM channel_groups ORDER BY id"))?
        .query_map([], read_row)?
        .collect::<Result<_, _>>()?;
    rows.into_iter().map(|row| group_from(connection, row)).collect()
}

pub fn get(connection: &Conn, id: i64) -> DbResult<Option<Group>> {
    let connection = connection.sql();
    let row = connection
        .prepare_cached(&format!("SELECT {COLUMNS} FROM channel_groups WHERE id = ?1"))?
        .query_row([id], read_row)
        .optional()?;
    row.map(|row| group_from(connection, row)).transpose()
}

pub fn id_by_name(connection: &Conn, name: &str) -> DbResult<Option<i64>> {
    let connection = connection.sql();
    Ok(connection
        .prepare_cached("SELECT id FROM channel_groups WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?)
}

fn replace_members(connection: &Connection, group_id: i64, members: &[GroupMember]) -> DbResult<()> {
    connection.execute("DELETE FROM group_members WHERE group_id = ?1", [group_id])?;
    let mut insert = connection
        .prepare_cached("INSERT INTO group_members (group_id, channel_id, weight, priority) VALUES (?1, ?2, ?3, ?4)")?;
    for member in members {
        insert.execute(params![group_id, member.channel_id, member.weight, member.priority])?;
    }
    Ok(())
}

/// Inserts a group with its members in one transaction; returns its id.
pub fn insert(connection: &mut Conn, group: &Group, now_ms: i64) -> DbResult<i64> {
    let connection = connection.sql_mut();
    let transaction = connection.transaction()?;
    transaction.execute(
        "INSERT INTO channel_groups (name, strategy, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?3)",
        params![group.name, group.strategy.as_str(), now_ms],
    )?;
    let id = transaction.last_insert_rowid();
    replace_members(&transaction, id, &group.members)?;
    transaction.commit()?;
    Ok(id)
}

/// Saves every field and the member list; false when the group does not exist.
pub fn update(connection: &mut Conn, group: &Group, now_ms: i64) -> DbResult<bool> {
    let connection = connection.sql_mut();
    let transaction = connection.transaction()?;
    let changed = transaction.execute(
        "UPDATE channel_groups SET name = ?2, strategy = ?3, updated_at_ms = ?4 WHERE id = ?1",
        params![group.id, group.name, group.strategy.as_str(), now_ms],
    )?;
    if changed > 0 {
        replace_members(&transaction, group.id, &group.members)?;
    }
    transaction.commit()?;
    Ok(changed > 0)
}

pub fn delete(connection: &Conn, id: i64) -> DbResult<bool> {
    let connection = connection.sql();
    Ok(connection.execute("DELETE FROM channel_groups WHERE id = ?1", [id])? > 0)
}
