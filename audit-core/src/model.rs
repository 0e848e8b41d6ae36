//! What the `Audited` derive implements: per-entity metadata and the user's own hooks.

use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, ModelTrait};

/// Per-entity audit settings, produced by `#[derive(Audited)]` from `#[audited(...)]`.
///
/// Field names here are database column names (a field renamed with
/// `#[sea_orm(column_name = "...")]` is listed under its column name).
#[derive(Debug)]
#[non_exhaustive]
pub struct AuditMeta {
    /// Columns that never reach the audit log.
    pub exclude: &'static [&'static str],
    /// Columns whose values are never stored; the row still says that they changed.
    pub mask: &'static [&'static str],
    /// Columns exempt from the default secret-name masking.
    pub unmask: &'static [&'static str],
    /// `module_path!()` of the entity, stored in `audit_log.module`.
    pub module: &'static str,
    /// The column `object_repr` is taken from (`#[audited(repr = "...")]`), if any.
    pub repr: Option<&'static str>,
}

impl AuditMeta {
    /// Builds metadata; used by the derive macro.
    pub const fn new(
        exclude: &'static [&'static str],
        mask: &'static [&'static str],
        unmask: &'static [&'static str],
        module: &'static str,
    ) -> Self {
        Self {
            exclude,
            mask,
            unmask,
            module,
            repr: None,
        }
    }

    /// Names the column `object_repr` is taken from, so a repr whose column is masked
    /// or excluded at run time (by configuration or secret-name masking) is not stored.
    pub const fn with_repr(mut self, column: &'static str) -> Self {
        self.repr = Some(column);
        self
    }
}

/// A SeaORM `Model` whose writes are audited. Implemented by `#[derive(Audited)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an audited model",
    label = "add `#[derive(sea_orm_audit::Audited)]` to this entity's `Model`"
)]
pub trait AuditedModel: ModelTrait + Clone + Send + Sync + 'static {
    /// The entity's audit settings.
    fn audit_meta() -> &'static AuditMeta;

    /// A short human-readable description stored as `object_repr`; `None` means
    /// "use `table#primary-key`".
    fn audit_repr(&self) -> Option<String> {
        None
    }
}

/// Your own lifecycle hooks on an audited entity, in place of `ActiveModelBehavior`.
///
/// `#[derive(Audited)]` implements `ActiveModelBehavior` for you. If you need hooks
/// of your own (timestamps, validation), add `#[audited(custom_hooks)]` and implement
/// this trait instead: it has the same methods with the same meaning. Your
/// `before_save` runs before the audit reads the row, so the values it sets are part
/// of the recorded diff; your `after_save`/`after_delete` run after the audit row is
/// written.
///
/// ```ignore
/// #[sea_orm_audit::async_trait]
/// impl sea_orm_audit::AuditBehavior for ActiveModel {
///     async fn before_save<C: ConnectionTrait>(mut self, _db: &C, _insert: bool) -> Result<Self, DbErr> {
///         self.updated_at = Set(chrono::Utc::now());
///         Ok(self)
///     }
/// }
/// ```
#[allow(unused_variables)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` has `#[audited(custom_hooks)]` but no `impl AuditBehavior`",
    label = "implement `sea_orm_audit::AuditBehavior` for this `ActiveModel`",
    note = "or remove `custom_hooks` from `#[audited(...)]` to get the default hooks"
)]
#[async_trait::async_trait]
pub trait AuditBehavior: ActiveModelTrait + Send {
    /// See `ActiveModelBehavior::new`.
    fn new() -> Self {
        <Self as ActiveModelTrait>::default()
    }

    /// See `ActiveModelBehavior::before_save`.
    async fn before_save<C>(self, db: &C, insert: bool) -> Result<Self, DbErr>
    where
        C: ConnectionTrait,
    {
        Ok(self)
    }

    /// See `ActiveModelBehavior::after_save`.
    async fn after_save<C>(
        model: <Self::Entity as EntityTrait>::Model,
        db: &C,
        insert: bool,
    ) -> Result<<Self::Entity as EntityTrait>::Model, DbErr>
    where
        C: ConnectionTrait,
    {
        Ok(model)
    }

    /// See `ActiveModelBehavior::before_delete`.
    async fn before_delete<C>(self, db: &C) -> Result<Self, DbErr>
    where
        C: ConnectionTrait,
    {
        Ok(self)
    }

    /// See `ActiveModelBehavior::after_delete`.
    async fn after_delete<C>(self, db: &C) -> Result<Self, DbErr>
    where
        C: ConnectionTrait,
    {
        Ok(self)
    }
}
