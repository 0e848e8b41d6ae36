//! Who may see the admin viewer, and the CSRF token that guards its two POST actions.
//!
//! Identity comes only from the application's [`Authorizer`], which sees the request's
//! head (cookies, headers, extensions set by the application's auth layer). Nothing in a
//! query string or form field is ever taken as identity.
//!
//! CSRF: a synchronizer token derived without server state, `HMAC-SHA256(secret, actor id,
//! session binding)`, put in a hidden field of every form and compared in constant time.
//! Chosen over a double-submit cookie because the admin is mounted under an application's
//! prefix and must not set cookies of its own (path, `SameSite` and subdomain cookie
//! injection would then be ours to get right), and because the token is bound to the
//! identity the authorizer returned: a token taken from one user's page is worthless for
//! another user, and a new session (when the application passes its session id as the
//! binding) invalidates old tokens.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use axum::http::request::Parts;
use sha2::{Digest, Sha256};

/// What a request may do in the admin viewer.
///
/// ```
/// use sea_orm_audit::admin::{Access, AdminUser};
///
/// let access = Access::Viewer(AdminUser::new("7", "Grace"));
/// assert!(access.user().is_some());
/// assert!(!access.is_superuser());
/// assert!(Access::NoAccess.user().is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// No page at all: 403, or the configured redirect.
    NoAccess,
    /// Every page, and resolving system events.
    Viewer(AdminUser),
    /// Everything a viewer may do, and pruning old rows.
    Superuser(AdminUser),
}

impl Access {
    /// The user, unless there is no access.
    ///
    /// ```
    /// # use sea_orm_audit::admin::{Access, AdminUser};
    /// let a = Access::Superuser(AdminUser::new("1", "Ada"));
    /// assert_eq!(a.user().map(|u| u.name.as_str()), Some("Ada"));
    /// ```
    pub fn user(&self) -> Option<&AdminUser> {
        match self {
            Access::NoAccess => None,
            Access::Viewer(u) | Access::Superuser(u) => Some(u),
        }
    }

    /// Whether this is [`Access::Superuser`].
    ///
    /// ```
    /// # use sea_orm_audit::admin::{Access, AdminUser};
    /// assert!(Access::Superuser(AdminUser::new("1", "Ada")).is_superuser());
    /// ```
    pub fn is_superuser(&self) -> bool {
        matches!(self, Access::Superuser(_))
    }
}

/// The person using the admin viewer, as the application identifies them.
///
/// `id` and `name` are written to the audit log for every write made through the viewer.
/// `session` binds the CSRF token to one login session: pass the application's session
/// id (or any value that changes at each login); it is only ever hashed.
///
/// ```
/// use sea_orm_audit::admin::AdminUser;
///
/// let user = AdminUser::new("42", "Ada").session("session-cookie-value");
/// assert_eq!(user.id, "42");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AdminUser {
    /// The application's user id, as text.
    pub id: String,
    /// A display name.
    pub name: String,
    session: String,
}

impl AdminUser {
    /// A user with no session binding (the CSRF token is then bound to the id alone).
    ///
    /// ```
    /// # use sea_orm_audit::admin::AdminUser;
    /// let user = AdminUser::new("42", "Ada");
    /// assert_eq!(user.name, "Ada");
    /// ```
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            session: String::new(),
        }
    }

    /// Binds the CSRF token to a session value.
    ///
    /// ```
    /// # use sea_orm_audit::admin::AdminUser;
    /// let user = AdminUser::new("42", "Ada").session("s3cr3t");
    /// assert_ne!(user, AdminUser::new("42", "Ada"));
    /// ```
    pub fn session(mut self, session: impl Into<String>) -> Self {
        self.session = session.into();
        self
    }
}

// The session binding is a secret: keep it out of logs.
impl fmt::Debug for AdminUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminUser")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The future an [`Authorizer`] returns.
///
/// ```
/// use sea_orm_audit::admin::{Access, AccessFuture};
///
/// let ready: AccessFuture<'static> = Box::pin(async { Access::NoAccess });
/// # let _ = ready;
/// ```
pub type AccessFuture<'a> = Pin<Box<dyn Future<Output = Access> + Send + 'a>>;

/// Maps a request to an [`Access`]; supplied by the application, which knows its own auth.
///
/// Any `Fn(&Parts) -> Access` closure is an authorizer. Implement the trait directly when
/// the decision needs I/O (a session store lookup, say).
///
/// ```
/// use axum::http::request::Parts;
/// use sea_orm_audit::admin::{Access, AccessFuture, AdminUser, Authorizer};
///
/// // A closure: trust an identity header set by an authenticating proxy in front.
/// let by_header = |parts: &Parts| match parts.headers.get("x-staff").and_then(|v| v.to_str().ok()) {
///     Some("root") => Access::Superuser(AdminUser::new("root", "Root")),
///     Some(name) => Access::Viewer(AdminUser::new(name, name)),
///     None => Access::NoAccess,
/// };
///
/// // A type, for asynchronous checks.
/// struct Sessions;
/// impl Authorizer for Sessions {
///     fn authorize<'a>(&'a self, parts: &'a Parts) -> AccessFuture<'a> {
///         Box::pin(async move {
///             let _cookie = parts.headers.get("cookie");
///             Access::NoAccess
///         })
///     }
/// }
/// # fn takes<A: Authorizer>(_: A) {}
/// # takes(by_header);
/// # takes(Sessions);
/// ```
pub trait Authorizer: Send + Sync + 'static {
    /// Decides what the request may do. Only the request head is available.
    ///
    /// ```
    /// use axum::http::Request;
    /// use sea_orm_audit::admin::{Access, Authorizer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let nobody = |_: &axum::http::request::Parts| Access::NoAccess;
    /// let (parts, ()) = Request::get("/audit/log").body(()).unwrap().into_parts();
    /// assert_eq!(nobody.authorize(&parts).await, Access::NoAccess);
    /// # }
    /// ```
    fn authorize<'a>(&'a self, parts: &'a Parts) -> AccessFuture<'a>;
}

impl<F> Authorizer for F
where
    F: Fn(&Parts) -> Access + Send + Sync + 'static,
{
    fn authorize<'a>(&'a self, parts: &'a Parts) -> AccessFuture<'a> {
        let access = self(parts);
        Box::pin(std::future::ready(access))
    }
}

// === CSRF ===

const BLOCK: usize = 64;

fn hmac_sha256(key: &[u8], message: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    for part in message {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The CSRF token for `user` under `secret`, as 64 hex characters.
pub(crate) fn csrf_token(secret: &[u8], user: &AdminUser) -> String {
    // Length-prefixed fields, so ("ab", "c") and ("a", "bc") never give the same input.
    let id_len = (user.id.len() as u64).to_be_bytes();
    let mac = hmac_sha256(
        secret,
        &[
            b"sea-orm-audit admin csrf v1\0",
            &id_len,
            user.id.as_bytes(),
            user.session.as_bytes(),
        ],
    );
    let mut out = String::with_capacity(64);
    for b in mac {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Whether `presented` is the token for `user`; the comparison takes the same time
/// whatever the position of the first differing byte.
pub(crate) fn csrf_valid(secret: &[u8], user: &AdminUser, presented: &str) -> bool {
    let expected = csrf_token(secret, user);
    let (a, b) = (expected.as_bytes(), presented.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn token_is_bound_to_secret_user_and_session() {
        let ada = AdminUser::new("1", "Ada").session("s1");
        let token = csrf_token(b"secret", &ada);
        assert!(csrf_valid(b"secret", &ada, &token));
        assert!(!csrf_valid(b"other", &ada, &token));
        assert!(!csrf_valid(
            b"secret",
            &AdminUser::new("2", "Bob").session("s1"),
            &token
        ));
        assert!(!csrf_valid(b"secret", &ada.clone().session("s2"), &token));
        assert!(!csrf_valid(b"secret", &ada, ""));
        assert!(!csrf_valid(b"secret", &ada, &token[..63]));
    }
}
