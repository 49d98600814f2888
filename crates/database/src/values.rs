//! The plain values repositories bind and read, the same for SQLite and PostgreSQL: a handful of
//! kinds (integer, real, text, bytes, null), converted to each store's own types at its edge.

use rusqlite::types::{ToSqlOutput, ValueRef};

/// A value bound to a statement's parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Arg<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// Anything a repository binds: integers, flags, text, bytes and their optional forms.
pub(crate) trait ToArg {
    fn to_arg(&self) -> Arg<'_>;
}

macro_rules! int_args {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn to_arg(&self) -> Arg<'_> {
                Arg::Int(*self as i64)
            }
        }
    )*};
}
int_args!(i64, i32, u32, u16, u8);

impl ToArg for u64 {
    fn to_arg(&self) -> Arg<'_> {
        // Counters never reach 2^63; saturating keeps a corrupt one from wrapping negative.
        Arg::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToArg for usize {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToArg for bool {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Int(i64::from(*self))
    }
}

impl ToArg for f64 {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Real(*self)
    }
}

impl ToArg for str {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Text(self)
    }
}

impl ToArg for String {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Text(self)
    }
}

impl ToArg for [u8] {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Blob(self)
    }
}

impl ToArg for Vec<u8> {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Blob(self)
    }
}

impl<T: ToArg + ?Sized> ToArg for &T {
    fn to_arg(&self) -> Arg<'_> {
        (**self).to_arg()
    }
}

impl<T: ToArg> ToArg for Option<T> {
    fn to_arg(&self) -> Arg<'_> {
        match self {
            Some(value) => value.to_arg(),
            None => Arg::Null,
        }
    }
}

impl ToArg for std::borrow::Cow<'_, str> {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Text(self)
    }
}

impl ToArg for Arg<'_> {
    fn to_arg(&self) -> Arg<'_> {
        *self
    }
}

/// Arguments in a list, as `execute` and `query` take them.
pub(crate) fn arg_list<T: ToArg>(values: &[T]) -> Vec<&dyn ToArg> {
    values.iter().map(|value| value as &dyn ToArg).collect()
}

/// The arguments of a statement, in parameter order: `args![id, name]`.
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        &[$(&$value as &dyn $crate::values::ToArg),*] as &[&dyn $crate::values::ToArg]
    };
}
pub(crate) use args;

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Arg::Null => ValueRef::Null,
            Arg::Int(value) => ValueRef::Integer(value),
            Arg::Real(value) => ValueRef::Real(value),
            Arg::Text(text) => ValueRef::Text(text.as_bytes()),
            Arg::Blob(bytes) => ValueRef::Blob(bytes),
        }))
    }
}

/// A column's value as a row holds it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Column<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl Column<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Column::Null => "null",
            Column::Int(_) => "an integer",
            Column::Real(_) => "a real number",
            Column::Text(_) => "text",
            Column::Blob(_) => "bytes",
        }
    }
}

/// What a repository reads a column as.
pub(crate) trait FromColumn: Sized {
    fn from_column(column: Column<'_>) -> Result<Self, String>;
}

fn mismatch<T>(column: Column<'_>, wanted: &str) -> Result<T, String> {
    Err(format!("{} where {wanted} was expected", column.kind()))
}

macro_rules! int_columns {
    ($($t:ty),*) => {$(
        impl FromColumn for $t {
            fn from_column(column: Column<'_>) -> Result<Self, String> {
                match column {
                    Column::Int(value) => <$t>::try_from(value).map_err(|_| format!("{value} is out of range")),
                    other => mismatch(other, "an integer"),
                }
            }
        }
    )*};
}
int_columns!(i64, i32, u32, u64, u16, u8, usize);

impl FromColumn for bool {
    fn from_column(column: Column<'_>) -> Result<Self, String> {
        match column {
            Column::Int(value) => Ok(value != 0),
            other => mismatch(other, "a flag"),
        }
    }
}

impl FromColumn for f64 {
    fn from_column(column: Column<'_>) -> Result<Self, String> {
        match column {
            Column::Real(value) => Ok(value),
            Column::Int(value) => Ok(value as f64),
            other => mismatch(other, "a number"),
        }
    }
}

impl FromColumn for String {
    fn from_column(column: Column<'_>) -> Result<Self, String> {
        match column {
            Column::Text(text) => Ok(text.to_string()),
            other => mismatch(other, "text"),
        }
    }
}

impl FromColumn for Vec<u8> {
    fn from_column(column: Column<'_>) -> Result<Self, String> {
        match column {
            Column::Blob(bytes) => Ok(bytes.to_vec()),
            other => mismatch(other, "bytes"),
        }
    }
}

impl<T: FromColumn> FromColumn for Option<T> {
    fn from_column(column: Column<'_>) -> Result<Self, String> {
        match column {
            Column::Null => Ok(None),
            other => T::from_column(other).map(Some),
        }
    }
}

/// A column's value owned, for copying rows between stores whatever their columns hold.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl FromColumn for Cell {
    fn from_column(column: Column<'_>) -> Result<Self, String> {
        Ok(match column {
            Column::Null => Cell::Null,
            Column::Int(value) => Cell::Int(value),
            Column::Real(value) => Cell::Real(value),
            Column::Text(text) => Cell::Text(text.to_string()),
            Column::Blob(bytes) => Cell::Blob(bytes.to_vec()),
        })
    }
}

impl ToArg for Cell {
    fn to_arg(&self) -> Arg<'_> {
        match self {
            Cell::Null => Arg::Null,
            Cell::Int(value) => Arg::Int(*value),
            Cell::Real(value) => Arg::Real(*value),
            Cell::Text(text) => Arg::Text(text),
            Cell::Blob(bytes) => Arg::Blob(bytes),
        }
    }
}

/// A key that is a number or a name: a row's id or a setting's key, a report's day or model.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Key {
    Number(i64),
    Name(String),
}

impl FromColumn for Key {
    fn from_column(column: Column<'_>) -> Result<Self, String> {
        match column {
            Column::Int(number) => Ok(Key::Number(number)),
            Column::Text(name) => Ok(Key::Name(name.to_string())),
            other => Err(format!("{other:?} is neither a number nor a name")),
        }
    }
}

impl ToArg for Key {
    fn to_arg(&self) -> Arg<'_> {
        match self {
            Key::Number(number) => Arg::Int(*number),
            Key::Name(name) => Arg::Text(name),
        }
    }
}
