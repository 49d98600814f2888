//! The `channel_groups` and `group_members` tables.

use burncloud_service_api::{Group, GroupMember, Strategy};

use crate::engine::{Begin, Engine, Row};
use crate::values::args;
use crate::{Conn, DbError, DbResult};

fn members(engine: &Engine, group_id: i64) -> DbResult<Vec<GroupMember>> {
    engine.query(
        "SELECT channel_id, weight, priority FROM group_members WHERE group_id = ?1 ORDER BY priority DESC, channel_id",
        args![group_id],
        |row| Ok(GroupMember { channel_id: row.get(0)?, weight: row.get(1)?, priority: row.get(2)? }),
    )
}

fn group_from(engine: &Engine, row: (i64, String, String, i64, i64)) -> DbResult<Group> {
    let (id, name, strategy, created_at_ms, updated_at_ms) = row;
    let strategy =
        Strategy::parse(&strategy).ok_or_else(|| DbError::Corrupt(format!("channel_groups.strategy {strategy:?}")))?;
    Ok(Group { id, name, strategy, members: members(engine, id)?, created_at_ms, updated_at_ms })
}

const COLUMNS: &str = "id, name, strategy, created_at_ms, updated_at_ms";

type GroupRow = (i64, String, String, i64, i64);

fn read_row(row: &Row<'_>) -> DbResult<GroupRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
}

pub fn list(connection: &Conn) -> DbResult<Vec<Group>> {
    let engine = connection.engine();
    let rows = engine.query(&format!("SELECT {COLUMNS} FROM channel_groups ORDER BY id"), args![], read_row)?;
    rows.into_iter().map(|row| group_from(engine, row)).collect()
}

pub fn get(connection: &Conn, id: i64) -> DbResult<Option<Group>> {
    let engine = connection.engine();
    let row = engine.query_opt(&format!("SELECT {COLUMNS} FROM channel_groups WHERE id = ?1"), args![id], read_row)?;
    row.map(|row| group_from(engine, row)).transpose()
}

pub fn id_by_name(connection: &Conn, name: &str) -> DbResult<Option<i64>> {
    connection.engine().query_opt("SELECT id FROM channel_groups WHERE name = ?1", args![name], |r| r.get(0))
}

fn replace_members(engine: &Engine, group_id: i64, members: &[GroupMember]) -> DbResult<()> {
    engine.execute("DELETE FROM group_members WHERE group_id = ?1", args![group_id])?;
    for member in members {
        engine.execute(
            "INSERT INTO group_members (group_id, channel_id, weight, priority) VALUES (?1, ?2, ?3, ?4)",
            args![group_id, member.channel_id, member.weight, member.priority],
        )?;
    }
    Ok(())
}

/// Inserts a group with its members in one transaction; returns its id.
pub fn insert(connection: &mut Conn, group: &Group, now_ms: i64) -> DbResult<i64> {
    connection.engine().transaction(Begin::Write, |engine| {
        let id: i64 = engine.query_one(
            "INSERT INTO channel_groups (name, strategy, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?3) \
             RETURNING id",
            args![group.name, group.strategy.as_str(), now_ms],
            |row| row.get(0),
        )?;
        replace_members(engine, id, &group.members)?;
        Ok(id)
    })
}

/// Saves every field and the member list; false when the group does not exist.
pub fn update(connection: &mut Conn, group: &Group, now_ms: i64) -> DbResult<bool> {
    connection.engine().transaction(Begin::Write, |engine| {
        let changed = engine.execute(
            "UPDATE channel_groups SET name = ?2, strategy = ?3, updated_at_ms = ?4 WHERE id = ?1",
            args![group.id, group.name, group.strategy.as_str(), now_ms],
        )?;
        if changed > 0 {
            replace_members(engine, group.id, &group.members)?;
        }
        Ok(changed > 0)
    })
}

pub fn delete(connection: &Conn, id: i64) -> DbResult<bool> {
    Ok(connection.engine().execute("DELETE FROM channel_groups WHERE id = ?1", args![id])? > 0)
}
