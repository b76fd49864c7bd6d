//! Small helpers shared by the migrations, so each table definition reads as a list of columns.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema;

/// `CREATE TABLE IF NOT EXISTS <name>` with the given columns.
pub fn table(name: &'static str, columns: Vec<ColumnDef>) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(name).if_not_exists();
    for mut c in columns {
        t.col(&mut c);
    }
    t.take()
}

/// A non-null `BIGINT` money or counter column that starts at zero.
pub fn counter(name: &'static str) -> ColumnDef {
    schema::big_integer(name).default(0).take()
}

/// A plain (or unique) index over the given columns.
pub fn index(name: &str, table: &'static str, cols: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(table).if_not_exists();
    for c in cols {
        i.col(*c);
    }
    if unique {
        i.unique();
    }
    i.take()
}

/// Creates the tables then the indexes, in order.
pub async fn create_all(
    manager: &SchemaManager<'_>,
    tables: Vec<TableCreateStatement>,
    indexes: Vec<IndexCreateStatement>,
) -> Result<(), DbErr> {
    for t in tables {
        manager.create_table(t).await?;
    }
    for i in indexes {
        manager.create_index(i).await?;
    }
    Ok(())
}

/// Drops the tables, in reverse order.
pub async fn drop_all(manager: &SchemaManager<'_>, tables: &[&'static str]) -> Result<(), DbErr> {
    for t in tables.iter().rev() {
        manager.drop_table(Table::drop().table(*t).if_exists().take()).await?;
    }
    Ok(())
}
