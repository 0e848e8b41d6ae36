//! Which address made the request: the socket peer, or what trusted proxies say.
//!
//! Forwarded headers are written by whoever sends them, so they are believed only when
//! the socket peer is a configured trusted proxy. The chain is then read from the
//! right (the hop nearest to us) and the first address that is not itself a trusted
//! proxy is the client. A forged header from an untrusted peer changes nothing, and
//! text that does not parse as an address is never returned.
//!
//! ```
//! use http::Request;
//! use sea_orm_audit::middleware::{ClientIp, ForwardedHeader};
//! use std::net::SocketAddr;
//!
//! let client_ip = ClientIp::new()
//!     .trust_proxy("10.0.0.0/8").unwrap()
//!     .header(ForwardedHeader::XForwardedFor);
//!
//! // The load balancer at 10.0.0.2 forwards a request from 203.0.113.9, which claimed
//! // to be 1.2.3.4 in a header it wrote itself.
//! let mut req = Request::builder()
//!     .header("x-forwarded-for", "1.2.3.4, 203.0.113.9")
//!     .body(())
//!     .unwrap();
//! req.extensions_mut().insert("10.0.0.2:41000".parse::<SocketAddr>().unwrap());
//! let (parts, _) = req.into_parts();
//! assert_eq!(client_ip.resolve(&parts).unwrap().to_string(), "203.0.113.9");
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use http::request::Parts;
use http::{Extensions, HeaderMap};

/// A forwarded header that a trusted proxy may set.
///
/// ```
/// use sea_orm_audit::middleware::{ClientIp, ForwardedHeader};
///
/// // Behind nginx with `proxy_set_header X-Real-IP $remote_addr;`
/// let ip = ClientIp::new()
///     .trust_proxy("127.0.0.1").unwrap()
///     .header(ForwardedHeader::XRealIp);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// RFC 7239 `Forwarded: for=…`.
    Forwarded,
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    XForwardedFor,
    /// `X-Real-IP: client` (one address, as set by nginx).
    XRealIp,
}

impl ForwardedHeader {
    fn name(self) -> &'static str {
        match self {
            ForwardedHeader::Forwarded => "forwarded",
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::XRealIp => "x-real-ip",
        }
    }
}

/// An address range in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`) or a single address.
///
/// ```
/// use sea_orm_audit::middleware::Cidr;
///
/// let net: Cidr = "192.168.0.0/16".parse().unwrap();
/// assert!(net.contains("192.168.4.1".parse().unwrap()));
/// assert!(!net.contains("192.169.0.1".parse().unwrap()));
/// assert!("10.0.0.0/33".parse::<Cidr>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in this range. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
    /// count as their IPv4 address, as dual-stack listeners report them.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = InvalidCidr;

    fn from_str(s: &str) -> Result<Self, InvalidCidr> {
        let err = || InvalidCidr(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr = canonical(addr.parse::<IpAddr>().map_err(|_| err())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| err())?,
            None => max,
        };
        if prefix > max {
            return Err(err());
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A trusted-proxy entry that is neither an address nor a CIDR range.
///
/// ```
/// use sea_orm_audit::middleware::ClientIp;
///
/// let err = ClientIp::new().trust_proxy("not-a-network").unwrap_err();
/// assert_eq!(err.to_string(), "invalid address or CIDR range `not-a-network`");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid address or CIDR range `{0}`")]
pub struct InvalidCidr(String);

type PeerFn = dyn Fn(&Extensions) -> Option<IpAddr> + Send + Sync;

/// How the client's IP address is found for a request.
///
/// By default it is the socket peer address, read from the request extensions: a
/// [`SocketAddr`] or [`IpAddr`] placed there by the server. For axum's
/// `ConnectInfo<SocketAddr>` (from `into_make_service_with_connect_info`), tell it
/// where to look with [`ClientIp::peer_addr_with`]:
///
/// ```
/// use sea_orm_audit::middleware::ClientIp;
/// # use std::net::SocketAddr;
/// # #[derive(Clone)] struct ConnectInfo<T>(T); // stands in for axum::extract::ConnectInfo
///
/// let client_ip = ClientIp::new()
///     .peer_addr_with(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0.ip()));
/// ```
///
/// Forwarded headers are read only when the peer is in the trusted-proxy list, and only
/// the headers named with [`ClientIp::header`] (`X-Forwarded-For` when none is named).
/// Name only the header your proxy writes: a header it passes through untouched would
/// be believed.
#[derive(Clone)]
pub struct ClientIp {
    trusted: Vec<Cidr>,
    headers: Vec<ForwardedHeader>,
    peer: Option<Arc<PeerFn>>,
}

impl Default for ClientIp {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIp")
            .field("trusted", &self.trusted)
            .field("headers", &self.headers())
            .field("custom_peer", &self.peer.is_some())
            .finish()
    }
}

impl ClientIp {
    /// The socket peer, no trusted proxies.
    pub fn new() -> Self {
        ClientIp {
            trusted: Vec::new(),
            headers: Vec::new(),
            peer: None,
        }
    }

    /// Trusts the proxies at `cidr` (an address or a CIDR range).
    ///
    /// ```
    /// # use sea_orm_audit::middleware::ClientIp;
    /// let ip = ClientIp::new().trust_proxy("10.0.0.0/8")?.trust_proxy("::1")?;
    /// # Ok::<_, sea_orm_audit::middleware::InvalidCidr>(())
    /// ```
    pub fn trust_proxy(mut self, cidr: &str) -> Result<Self, InvalidCidr> {
        self.trusted.push(cidr.parse()?);
        Ok(self)
    }

    /// Trusts each of `cidrs`.
    ///
    /// ```
    /// # use sea_orm_audit::middleware::ClientIp;
    /// let ip = ClientIp::new().trust_proxies(["127.0.0.1", "10.0.0.0/8", "fd00::/8"]).unwrap();
    /// ```
    pub fn trust_proxies<I, S>(mut self, cidrs: I) -> Result<Self, InvalidCidr>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for c in cidrs {
            self = self.trust_proxy(c.as_ref())?;
        }
        Ok(self)
    }

    /// Adds a forwarded header to read from trusted proxies. When several are named,
    /// the first one present on a request is used.
    ///
    /// ```
    /// # use sea_orm_audit::middleware::{ClientIp, ForwardedHeader};
    /// let ip = ClientIp::new().header(ForwardedHeader::XRealIp);
    /// ```
    pub fn header(mut self, header: ForwardedHeader) -> Self {
        if !self.headers.contains(&header) {
            self.headers.push(header);
        }
        self
    }

    /// Reads the socket peer address from the extensions with `f` instead of looking
    /// for a [`SocketAddr`] or [`IpAddr`] extension.
    pub fn peer_addr_with<F>(mut self, f: F) -> Self
    where
        F: Fn(&Extensions) -> Option<IpAddr> + Send + Sync + 'static,
    {
        self.peer = Some(Arc::new(f));
        self
    }

    /// Whether `ip` is a trusted proxy.
    ///
    /// ```
    /// # use sea_orm_audit::middleware::ClientIp;
    /// let ip = ClientIp::new().trust_proxy("10.0.0.0/8").unwrap();
    /// assert!(ip.is_trusted("10.1.2.3".parse().unwrap()));
    /// ```
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }

    fn headers(&self) -> &[ForwardedHeader] {
        if self.headers.is_empty() {
            &[ForwardedHeader::XForwardedFor]
        } else {
            &self.headers
        }
    }

    /// The socket peer of a request, if the server recorded it.
    ///
    /// ```
    /// # use sea_orm_audit::middleware::ClientIp;
    /// let mut ext = http::Extensions::new();
    /// ext.insert("[::ffff:192.0.2.1]:80".parse::<std::net::SocketAddr>().unwrap());
    /// assert_eq!(ClientIp::new().peer(&ext).unwrap().to_string(), "192.0.2.1");
    /// ```
    pub fn peer(&self, ext: &Extensions) -> Option<IpAddr> {
        let ip = match &self.peer {
            Some(f) => f(ext),
            None => ext
                .get::<SocketAddr>()
                .map(SocketAddr::ip)
                .or_else(|| ext.get::<IpAddr>().copied()),
        };
        ip.map(canonical)
    }

    /// The client address of a request: the peer, or the right-most untrusted address
    /// of the forwarded chain when the peer is a trusted proxy. `None` when the server
    /// did not record the peer.
    ///
    /// ```
    /// # use sea_orm_audit::middleware::ClientIp;
    /// let mut req = http::Request::builder()
    ///     .header("x-forwarded-for", "1.2.3.4") // forged by the client itself
    ///     .body(())
    ///     .unwrap();
    /// req.extensions_mut().insert("198.51.100.7:5000".parse::<std::net::SocketAddr>().unwrap());
    /// let (parts, _) = req.into_parts();
    /// let ip = ClientIp::new().trust_proxy("10.0.0.0/8").unwrap().resolve(&parts);
    /// assert_eq!(ip.unwrap().to_string(), "198.51.100.7");
    /// ```
    pub fn resolve(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = self.peer(&parts.extensions)?;
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let Some(chain) = self
            .headers()
            .iter()
            .find_map(|h| forwarded_chain(&parts.headers, *h))
        else {
            return Some(peer);
        };
        let mut client = peer;
        for hop in chain.iter().rev() {
            // An entry that is not an address breaks the chain: nothing left of it can be
            // vouched for, so the last address we could believe stands.
            let Some(ip) = hop else { break };
            client = *ip;
            if !self.is_trusted(*ip) {
                break;
            }
        }
        Some(client)
    }
}

/// The addresses a header lists, left (client) to right (nearest proxy), each `None`
/// when it is not an address. `None` when the header is absent.
fn forwarded_chain(headers: &HeaderMap, which: ForwardedHeader) -> Option<Vec<Option<IpAddr>>> {
    let mut values = headers.get_all(which.name()).iter().peekable();
    values.peek()?;
    let mut chain = Vec::new();
    for value in values {
        let Ok(value) = value.to_str() else {
            chain.push(None);
            continue;
        };
        match which {
            ForwardedHeader::XForwardedFor => {
                chain.extend(value.split(',').map(parse_node));
            }
            ForwardedHeader::XRealIp => chain.push(parse_node(value)),
            ForwardedHeader::Forwarded => {
                for element in value.split(',') {
                    let node = element.split(';').find_map(|pair| {
                        let (k, v) = pair.split_once('=')?;
                        k.trim().eq_ignore_ascii_case("for").then_some(v)
                    });
                    // An element without `for=` says nothing about the client, but it
                    // still is a hop we cannot place, so it breaks the chain.
                    chain.push(node.and_then(parse_node));
                }
            }
        }
    }
    Some(chain)
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`,
/// `[2001:db8::1]:80`, optionally quoted (RFC 7239).
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    let inner = s.strip_prefix('[')?.split(']').next()?;
    inner
        .parse::<Ipv6Addr>()
        .ok()
        .map(|ip| canonical(IpAddr::V6(ip)))
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn parts(peer: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut req = b.body(()).expect("request");
        req.extensions_mut()
            .insert(peer.parse::<SocketAddr>().expect("peer"));
        req.into_parts().0
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    fn proxied() -> ClientIp {
        ClientIp::new()
            .trust_proxies(["10.0.0.0/8", "2001:db8:ffff::/48"])
            .expect("cidrs")
    }

    #[test]
    fn untrusted_peer_ignores_headers() {
        let p = parts("198.51.100.7:5000", &[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(proxied().resolve(&p), ip("198.51.100.7"));
        assert_eq!(ClientIp::new().resolve(&p), ip("198.51.100.7"));
    }

    #[test]
    fn trusted_peer_right_most_untrusted() {
        let p = parts(
            "10.0.0.1:5000",
            &[("x-forwarded-for", "6.6.6.6, 203.0.113.5, 10.0.0.9")],
        );
        assert_eq!(proxied().resolve(&p), ip("203.0.113.5"));
        let p = parts(
            "10.0.0.1:5000",
            &[
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-for", "203.0.113.5"),
            ],
        );
        assert_eq!(proxied().resolve(&p), ip("203.0.113.5"));
    }

    #[test]
    fn garbage_never_returned() {
        for xff in ["not-an-ip<b>", "", "203.0.113.5, junk", "unknown"] {
            let p = parts("10.0.0.1:5000", &[("x-forwarded-for", xff)]);
            assert_eq!(proxied().resolve(&p), ip("10.0.0.1"), "{xff}");
        }
        // Garbage left of a valid hop cannot hide it.
        let p = parts("10.0.0.1:5000", &[("x-forwarded-for", "junk, 203.0.113.5")]);
        assert_eq!(proxied().resolve(&p), ip("203.0.113.5"));
    }

    #[test]
    fn all_trusted_gives_left_most() {
        let p = parts(
            "10.0.0.1:5000",
            &[("x-forwarded-for", "10.0.0.3, 10.0.0.2")],
        );
        assert_eq!(proxied().resolve(&p), ip("10.0.0.3"));
    }

    #[test]
    fn forwarded_and_real_ip() {
        let c = proxied()
            .header(ForwardedHeader::Forwarded)
            .header(ForwardedHeader::XRealIp);
        let p = parts(
            "10.0.0.1:5000",
            &[(
                "forwarded",
                "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.0.0.5",
            )],
        );
        assert_eq!(c.resolve(&p), ip("2001:db8:cafe::17"));
        let p = parts("10.0.0.1:5000", &[("x-real-ip", "203.0.113.8")]);
        assert_eq!(c.resolve(&p), ip("203.0.113.8"));
        // Not named: ignored even from a trusted peer.
        assert_eq!(proxied().resolve(&p), ip("10.0.0.1"));
        let p = parts("10.0.0.1:5000", &[("forwarded", "for=_hidden")]);
        assert_eq!(c.resolve(&p), ip("10.0.0.1"));
    }

    #[test]
    fn ports_brackets_and_mapped() {
        assert_eq!(parse_node("1.2.3.4:80"), ip("1.2.3.4"));
        assert_eq!(parse_node("[2001:db8::1]:443"), ip("2001:db8::1"));
        assert_eq!(parse_node("[2001:db8::1]"), ip("2001:db8::1"));
        assert_eq!(parse_node("::ffff:1.2.3.4"), ip("1.2.3.4"));
        assert_eq!(parse_node("1.2.3.4.5"), None);
        let p = parts(
            "[::ffff:10.0.0.1]:5000",
            &[("x-forwarded-for", "203.0.113.5")],
        );
        assert_eq!(proxied().resolve(&p), ip("203.0.113.5"));
    }

    #[test]
    fn cidr_edges() {
        let all: Cidr = "0.0.0.0/0".parse().expect("cidr");
        assert!(all.contains("8.8.8.8".parse().expect("ip")));
        assert!(!all.contains("::1".parse().expect("ip")));
        let one: Cidr = "2001:db8::1".parse().expect("cidr");
        assert!(one.contains("2001:db8::1".parse().expect("ip")));
        assert!(!one.contains("2001:db8::2".parse().expect("ip")));
        assert!("2001:db8::/129".parse::<Cidr>().is_err());
        assert!("10.0.0.0/x".parse::<Cidr>().is_err());
    }

    #[test]
    fn no_peer_no_ip() {
        let p = Request::builder()
            .header("x-forwarded-for", "1.1.1.1")
            .body(())
            .expect("request")
            .into_parts()
            .0;
        assert_eq!(proxied().resolve(&p), None);
    }
}
