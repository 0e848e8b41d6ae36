//! Helpers shared by the benchmark examples (a module, not an example of its own).

/// `url` with its database path replaced by `db`, keeping any `?query`; a URL without
/// a database path gains one.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..host_end], db);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The flag that makes a benchmark leave out the admin search's `audit_log` indexes.
const WITHOUT_SEARCH_INDEXES: &str = "--without-search-indexes";

/// Removes [`WITHOUT_SEARCH_INDEXES`] from `args`; true when it was there.
pub fn take_without_search_indexes(args: &mut Vec<String>) -> bool {
    let before = args.len();
    args.retain(|a| a != WITHOUT_SEARCH_INDEXES);
    args.len() != before
}

/// Applies the audit migrations, all of them or, without `search_indexes`, all but the one
/// that adds the admin search's three `audit_log` indexes, so that a run shows what those
/// indexes cost. The other five read indexes come with the table.
pub async fn migrate(
    db: &sea_orm::DatabaseConnection,
    search_indexes: bool,
) -> Result<(), sea_orm::DbErr> {
    use sea_orm_audit_migration::{ADD_AUDIT_LOG_SEARCH_INDEXES, Migrator, migrations};
    use sea_orm_migration::MigratorTrait;

    // `Migrator::up` applies the first `steps` migrations, in list order.
    let steps = if search_indexes {
        None
    } else {
        let list = migrations();
        match list
            .iter()
            .position(|m| m.name() == ADD_AUDIT_LOG_SEARCH_INDEXES)
        {
            Some(at) if at + 1 == list.len() => Some(at as u32),
            _ => {
                return Err(sea_orm::DbErr::Custom(
                    "the search-index migration is no longer the last one".into(),
                ));
            }
        }
    };
    Migrator::up(db, steps).await?;
    Ok(())
}

/// The line a benchmark prints to say which `audit_log` indexes it ran with.
pub fn index_note(search_indexes: bool) -> String {
    if search_indexes {
        "`audit_log` indexes: all eight (every audit migration applied)".to_owned()
    } else {
        format!(
            "`audit_log` indexes: five (without the search-index migration, `{WITHOUT_SEARCH_INDEXES}`)"
        )
    }
}
