//! Stored JSON columns read back as typed values. A column that does not
//! parse is a [`DbError::CorruptRow`] naming its table, row and column:
//! never a default that would run or show as if nothing were stored.

use serde::de::DeserializeOwned;
use serde_json::error::Category;

use super::{DbError, DbResult};

/// Where a stored value lives: its table, its row's id and its column.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cell {
    pub table: &'static str,
    pub id: i64,
    pub column: &'static str,
}

impl Cell {
    pub fn new(table: &'static str, id: i64, column: &'static str) -> Cell {
        Cell { table, id, column }
    }

    /// The column's JSON as a `T`.
    pub fn parse<T: DeserializeOwned>(self, text: &str) -> DbResult<T> {
        serde_json::from_str(text).map_err(|err| self.corrupt(describe(&err)))
    }

    /// The column's JSON, already parsed, as a `T`.
    pub fn parse_value<T: DeserializeOwned>(self, value: &serde_json::Value) -> DbResult<T> {
        T::deserialize(value).map_err(|err| self.corrupt(describe(&err)))
    }

    /// Like [`Cell::parse`], for a column where the empty text means none.
    pub fn parse_unless_empty<T: DeserializeOwned>(self, text: &str) -> DbResult<Option<T>> {
        if text.is_empty() { Ok(None) } else { self.parse(text).map(Some) }
    }

    pub fn corrupt(self, reason: String) -> DbError {
        DbError::CorruptRow { table: self.table, id: self.id, column: self.column, reason }
    }
}

/// Why the text did not parse, by kind and position only: serde's own
/// message may quote the value, and stored configuration holds secrets.
fn describe(err: &serde_json::Error) -> String {
    let kind = match err.classify() {
        Category::Syntax | Category::Io => "is not JSON",
        Category::Eof => "is cut short",
        Category::Data => "does not have the stored shape",
    };
    format!("{kind} (line {}, column {})", err.line(), err.column())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_value_that_does_not_parse_names_its_row_without_quoting_it() {
        let cell = Cell::new("resources", 7, "config");
        let err = cell.parse::<serde_json::Value>("not json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "stored data is corrupt: column config of resources row 7 is not JSON (line 1, column 2)"
        );
        let err = cell.parse::<HashMap<String, String>>(r#"{"a": ["s3cret"]}"#).unwrap_err().to_string();
        assert!(err.contains("does not have the stored shape"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        assert!(cell.parse::<serde_json::Value>("{\"a\"").unwrap_err().to_string().contains("is cut short"));
    }

    #[test]
    fn empty_text_is_none_where_it_means_none() {
        let cell = Cell::new("pipelines", 1, "instance_vars");
        assert_eq!(cell.parse_unless_empty::<serde_json::Value>("").unwrap(), None);
        assert_eq!(cell.parse_unless_empty::<serde_json::Value>("{}").unwrap(), Some(serde_json::json!({})));
    }
}
