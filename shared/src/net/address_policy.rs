//! Destination address policy for outgoing webhook requests (SSRF protection).
//! Endpoints are operator-supplied URLs, so loopback, private, link-local, metadata and other
//! non-public addresses are refused both for literal-IP URLs and at connect time (DNS rebinding).

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use crate::net::lookup::NameLookup;
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// IPv4 ranges that are never reachable from a webhook unless allowlisted.
const V4_NON_PUBLIC: [(Ipv4Addr, u32); 16] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),          // "this network"
    (Ipv4Addr::new(10, 0, 0, 0), 8),         // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),      // CGNAT shared address space
    (Ipv4Addr::new(127, 0, 0, 0), 8),        // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),     // link-local, incl. cloud metadata 169.254.169.254
    (Ipv4Addr::new(172, 16, 0, 0), 12),      // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),       // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),       // documentation TEST-NET-1
    (Ipv4Addr::new(192, 88, 99, 0), 24),     // 6to4 relay anycast (deprecated)
    (Ipv4Addr::new(192, 168, 0, 0), 16),     // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),      // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24),    // documentation TEST-NET-2
    (Ipv4Addr::new(203, 0, 113, 0), 24),     // documentation TEST-NET-3
    (Ipv4Addr::new(224, 0, 0, 0), 4),        // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),        // reserved
    (Ipv4Addr::new(255, 255, 255, 255), 32), // limited broadcast
];

/// IPv6 ranges that are never reachable from a webhook unless allowlisted. The embedded-IPv4
/// ranges (`::ffff:0:0/96`, `::/96`, `64:ff9b::/96`) are not listed: [`canonical`] turns them
/// into IPv4 first. Anything outside `2000::/3` (the only block IANA allocates as global
/// unicast) is refused as well, which covers the listed ranges below `2000::` again and any
/// future special-purpose block there (e.g. `5f00::/16`, SRv6 SIDs).
const V6_NON_PUBLIC: [(Ipv6Addr, u32); 12] = [
    (Ipv6Addr::UNSPECIFIED, 128),                         // ::
    (Ipv6Addr::LOCALHOST, 128),                           // ::1
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48),  // local-use NAT64
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),      // discard-only
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),     // IETF protocol assignments, incl. Teredo
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16),     // 6to4
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),     // documentation
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),      // unique local (ULA)
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),     // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),     // site-local (deprecated)
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),      // multicast
];

/// `2000::/3`, global unicast.
const V6_GLOBAL_UNICAST: (Ipv6Addr, u32) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// `64:ff9b::/96`, the NAT64 well-known prefix, as its first 12 octets.
const NAT64_WKP: [u8; 12] = [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0];

fn v4_in(ip: Ipv4Addr, (net, len): (Ipv4Addr, u32)) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn v6_in(ip: Ipv6Addr, (net, len): (Ipv6Addr, u32)) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// Canonical form of an address for classification: IPv4-mapped (`::ffff:a.b.c.d`) and
/// IPv4-compatible (`::a.b.c.d`, except `::` and `::1`) IPv6 addresses become IPv4, and so do
/// addresses under the NAT64 well-known prefix `64:ff9b::/96` (the gateway forwards them to the
/// embedded IPv4 address). Everything else is returned unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let octets = v6.octets();
    let (prefix, tail) = octets.split_at(12);
    let embedded = Ipv4Addr::new(tail[0], tail[1], tail[2], tail[3]);
    let compatible =
        prefix.iter().all(|&b| b == 0) && v6 != Ipv6Addr::UNSPECIFIED && v6 != Ipv6Addr::LOCALHOST;
    if compatible || prefix == NAT64_WKP {
        IpAddr::V4(embedded)
    } else {
        ip
    }
}

/// True when `ip` is globally routable unicast per the IANA special-purpose address registries
/// (classified after [`canonical`], so `::ffff:127.0.0.1` is not public).
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => !V4_NON_PUBLIC.iter().any(|&range| v4_in(v4, range)),
        IpAddr::V6(v6) => {
            v6_in(v6, V6_GLOBAL_UNICAST) && !V6_NON_PUBLIC.iter().any(|&range| v6_in(v6, range))
        }
    }
}

/// A destination refused by the [`AddressPolicy`]. `Display` is deliberately generic; the
/// refused address (when there is a single one to name) is kept in [`Blocked::addr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("destination address is not allowed")]
pub struct Blocked {
    /// The refused address: the literal IP of the URL, or the first address a name resolved to.
    /// `None` for `localhost` names refused by [`AddressPolicy::check_url`].
    pub addr: Option<IpAddr>,
}

/// An entry of a CIDR allowlist that is neither a CIDR nor an IP address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid allowlist entry {entry:?}: expected a CIDR such as 10.0.0.0/8 or an IP address")]
pub struct AllowlistError {
    /// The offending entry, trimmed.
    pub entry: String,
}

/// Which destinations a webhook may reach: public addresses, plus the allowlisted CIDRs.
/// Non-public ranges are refused unless allowlisted. The default allows nothing extra.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// A policy that additionally allows the given CIDRs.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// Parses a comma-separated allowlist such as `"10.0.0.0/8, ::1/128"` (the
    /// `WEBHOOKS_ALLOWED_CIDRS` format). Whitespace around entries and empty entries are ignored,
    /// so `""` or only whitespace is the empty list; a bare IP means `/32` or `/128`; host bits
    /// of a CIDR are cleared (`10.0.0.1/8` is `10.0.0.0/8`). The error names the bad entry.
    pub fn parse_allowlist(s: &str) -> Result<Self, AllowlistError> {
        let mut allowed = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = entry
                .parse::<IpNet>()
                .map(|net| net.trunc())
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| AllowlistError {
                    entry: entry.to_owned(),
                })?;
            allowed.push(net);
        }
        Ok(Self { allowed })
    }

    /// `127.0.0.0/8` and `::1/128`: the local dev server default.
    pub fn loopback() -> Self {
        Self::new(vec![
            IpNet::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8).expect("valid prefix"),
            IpNet::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ])
    }

    /// The allowlisted CIDRs.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// True when `ip` is public (see [`is_public`]) or falls in an allowlisted CIDR. The
    /// allowlist is matched against both the raw and the [`canonical`] form, so `127.0.0.0/8`
    /// also admits `::ffff:127.0.0.1`, and `64:ff9b::/96` admits NAT64 addresses as such.
    pub fn permits(&self, ip: IpAddr) -> bool {
        if is_public(ip) {
            return true;
        }
        let canon = canonical(ip);
        self.allowed
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canon))
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), Blocked> {
        if self.permits(ip) {
            Ok(())
        } else {
            Err(Blocked { addr: Some(ip) })
        }
    }

    /// Checks a URL whose host is a literal IP, which reqwest connects to without calling the
    /// resolver. The `url` crate has already normalised the WHATWG spellings of IPv4 hosts
    /// (`2130706433`, `0x7f.0.0.1`, `127.1`, `0177.0.0.1` are all `127.0.0.1` for http/https).
    ///
    /// Domain hosts return `Ok`: their addresses are checked by [`FilteringResolver`] at connect
    /// time. Two kinds of domain host are checked here as well, as an early and clearer refusal
    /// (the resolver would refuse them anyway): a name that parses as an IP after trimming one
    /// trailing dot (non-special schemes keep such hosts as names), and `localhost` /
    /// `*.localhost`, which always mean loopback and are refused unless the policy permits
    /// `127.0.0.1` or `::1`. A URL without a host has no destination and returns `Ok`; checking
    /// the scheme is the caller's job.
    pub fn check_url(&self, url: &Url) -> Result<(), Blocked> {
        match url.host() {
            Some(Host::Ipv4(v4)) => self.check_ip(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => self.check_ip(IpAddr::V6(v6)),
            Some(Host::Domain(name)) => {
                let name = name.strip_suffix('.').unwrap_or(name);
                if let Ok(ip) = name.parse::<IpAddr>() {
                    return self.check_ip(ip);
                }
                let name = name.to_ascii_lowercase();
                let localhost = name == "localhost" || name.ends_with(".localhost");
                if localhost
                    && !self.permits(IpAddr::V4(Ipv4Addr::LOCALHOST))
                    && !self.permits(IpAddr::V6(Ipv6Addr::LOCALHOST))
                {
                    return Err(Blocked { addr: None });
                }
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// A reqwest DNS resolver that resolves through a [`NameLookup`] (the system's by default)
/// and refuses the name unless the policy permits every address it resolved to: one
/// non-public address among public ones is enough to refuse, so a DNS answer cannot smuggle a
/// private target in beside a public decoy. A refusal is a boxed [`Blocked`] (naming the first
/// refused address), told apart from a DNS failure with [`is_blocked`].
///
/// Wiring:
///
/// * Build the client with `.dns_resolver(Arc::new(FilteringResolver::new(policy, lookup)))`
///   and `.no_proxy()`. Every address a name resolves to is checked right before the
///   connection is made, so a name that first resolves to a public address and later to
///   `127.0.0.1` is still refused. Through a proxy the target would not be resolved locally,
///   hence `.no_proxy()`.
/// * reqwest does not call the resolver for literal-IP hosts (`http://127.1/`), so also call
///   [`AddressPolicy::check_url`] before every request. Redirects must be disabled or each hop
///   checked the same way (a redirect to a literal IP would bypass the resolver).
/// * reqwest 0.13 keeps the resolver's error in the `source()` chain of the `reqwest::Error`
///   (request error -> hyper client error -> connect "dns error" -> `Blocked`), so
///   [`is_blocked`] recognises it by downcasting; no message matching is needed.
#[derive(Clone)]
pub struct FilteringResolver {
    policy: Arc<AddressPolicy>,
    lookup: Arc<dyn NameLookup>,
}

impl FilteringResolver {
    /// A resolver enforcing `policy` on what `lookup` answers.
    pub fn new(policy: Arc<AddressPolicy>, lookup: Arc<dyn NameLookup>) -> Self {
        Self { policy, lookup }
    }
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let answer = self.lookup.lookup(name.as_str());
        Box::pin(async move {
            let resolved = answer.await?;
            if let Some(&refused) = resolved.iter().find(|ip| !policy.permits(**ip)) {
                return Err(Box::new(Blocked {
                    addr: Some(refused),
                }) as _);
            }
            if resolved.is_empty() {
                return Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "name resolved to no addresses",
                )) as _);
            }
            let addrs: Addrs = Box::new(resolved.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// True when a [`Blocked`] is anywhere in `err`'s `source()` chain, e.g. a `reqwest::Error`
/// whose connection was refused by [`FilteringResolver`] (reqwest 0.13 keeps the resolver's
/// error in the chain, so a downcast suffices). An `io::Error` wrapping a `Blocked` is found as
/// well, although `io::Error::source` skips the wrapped error itself.
pub fn is_blocked(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<Blocked>() {
            return true;
        }
        let wrapped_in_io = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .is_some_and(|inner| inner.is::<Blocked>());
        if wrapped_in_io {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::lookup::SystemLookup;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("bad test address {s}"))
    }

    #[test]
    fn classification_table() {
        let non_public = [
            // IPv4
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.1",
            "192.0.0.9",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.254",
            "255.255.255.255",
            // IPv6
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::ffff:192.168.0.1",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "::10.0.0.1",
            "::2",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "64:ff9b:1:ffff::8.8.8.8",
            "100::1",
            "100::ffff:ffff:ffff:ffff",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:1::1",
            "2001:2::1",
            "2001:1ff:ffff::1",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "2002::1",
            "2002:7f00:1::1",
            "3fff::1",
            "3fff:fff::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            // outside 2000::/3: never global unicast
            "::ffff:0:7f00:1",
            "4000::1",
            "5f00::1",
            "8000::1",
            "e000::1",
        ];
        for s in non_public {
            assert!(!is_public(ip(s)), "{s} must not be public");
        }
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "9.255.255.255",
            "11.0.0.1",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.1",
            "169.253.255.255",
            "169.255.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "192.88.98.1",
            "192.167.255.255",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "203.0.114.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2001:200::1",
            "2001:db9::1",
            "2003::1",
            "2a00:1450:4001::1",
            "3ffe:ffff::1",
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "64:ff9b::808:808",
        ];
        for s in public {
            assert!(is_public(ip(s)), "{s} must be public");
        }
    }

    #[test]
    fn canonicalisation() {
        let cases = [
            ("::ffff:127.0.0.1", "127.0.0.1"),
            ("::ffff:7f00:1", "127.0.0.1"),
            ("::ffff:169.254.169.254", "169.254.169.254"),
            ("::127.0.0.1", "127.0.0.1"),
            ("::0.0.0.2", "0.0.0.2"),
            ("64:ff9b::7f00:1", "127.0.0.1"),
            ("64:ff9b::8.8.8.8", "8.8.8.8"),
            ("::", "::"),
            ("::1", "::1"),
            ("64:ff9b:1::7f00:1", "64:ff9b:1::7f00:1"),
            ("2606:4700:4700::1111", "2606:4700:4700::1111"),
            ("fe80::1", "fe80::1"),
            ("10.0.0.1", "10.0.0.1"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(ip(input)), ip(want), "canonical({input})");
        }
    }

    #[test]
    fn loopback_allowlist() {
        let policy = AddressPolicy::loopback();
        for s in [
            "127.0.0.1",
            "127.5.5.5",
            "::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "8.8.8.8",
        ] {
            assert!(policy.permits(ip(s)), "loopback() must permit {s}");
        }
        for s in [
            "10.0.0.1",
            "169.254.169.254",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "0.0.0.0",
            "::",
            "fe80::1",
            "192.168.0.1",
        ] {
            assert!(!policy.permits(ip(s)), "loopback() must refuse {s}");
        }
    }

    #[test]
    fn empty_allowlist() {
        let policy = AddressPolicy::default();
        assert!(policy.allowed().is_empty());
        for s in [
            "127.0.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "10.0.0.1",
            "fd00::1",
        ] {
            assert!(!policy.permits(ip(s)), "empty policy must refuse {s}");
        }
        for s in ["8.8.8.8", "2606:4700:4700::1111"] {
            assert!(policy.permits(ip(s)), "empty policy must permit {s}");
        }
    }

    #[test]
    fn custom_allowlist_matches_raw_and_canonical_forms() {
        let policy = AddressPolicy::parse_allowlist("10.0.0.0/8, fd00::/8, 64:ff9b::/96").unwrap();
        assert!(policy.permits(ip("10.1.2.3")));
        assert!(policy.permits(ip("::ffff:10.1.2.3")));
        assert!(policy.permits(ip("fd12::1")));
        // Raw form matches the NAT64 entry even though the embedded address is link-local.
        assert!(policy.permits(ip("64:ff9b::a9fe:a9fe")));
        assert!(!policy.permits(ip("169.254.169.254")));
        assert!(!policy.permits(ip("127.0.0.1")));
        assert!(!policy.permits(ip("fc00::1")));
    }

    #[test]
    fn parse_allowlist_good() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let cases: [(&str, Vec<IpNet>); 10] = [
            ("", vec![]),
            ("   \t ", vec![]),
            (
                "10.0.0.0/8, ::1/128",
                vec![net("10.0.0.0/8"), net("::1/128")],
            ),
            (
                "  10.0.0.0/8 ,\t::1/128  ",
                vec![net("10.0.0.0/8"), net("::1/128")],
            ),
            (
                "10.0.0.0/8,::1/128",
                vec![net("10.0.0.0/8"), net("::1/128")],
            ),
            ("127.0.0.1", vec![net("127.0.0.1/32")]),
            ("::1", vec![net("::1/128")]),
            ("10.0.0.1/8", vec![net("10.0.0.0/8")]),
            ("10.0.0.0/8,", vec![net("10.0.0.0/8")]),
            (
                "127.0.0.0/8,::1/128",
                AddressPolicy::loopback().allowed().to_vec(),
            ),
        ];
        for (input, want) in cases {
            let policy = AddressPolicy::parse_allowlist(input)
                .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
            assert_eq!(policy.allowed(), want.as_slice(), "input {input:?}");
        }
    }

    #[test]
    fn parse_allowlist_bad() {
        let cases = [
            ("not-an-ip", "not-an-ip"),
            ("10.0.0.0/33", "10.0.0.0/33"),
            ("::1/129", "::1/129"),
            ("999.1.1.1", "999.1.1.1"),
            ("10.0.0.0/8/1", "10.0.0.0/8/1"),
            ("10.0.0.0/8, bogus ,::1", "bogus"),
            ("10.0.0.0 /8", "10.0.0.0 /8"),
            ("[::1]", "[::1]"),
            ("localhost", "localhost"),
        ];
        for (input, entry) in cases {
            let err = AddressPolicy::parse_allowlist(input)
                .expect_err(&format!("{input:?} must be rejected"));
            assert_eq!(err.entry, entry, "input {input:?}");
            assert!(err.to_string().contains(entry), "message names the entry");
        }
    }

    #[test]
    fn check_url_spellings() {
        let empty = AddressPolicy::default();
        let loopback = AddressPolicy::loopback();
        let url = |s: &str| Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let blocked = [
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://127.1/",
            "http://0177.0.0.1/",
            "http://127.0.0.1./",
            "http://[::ffff:7f00:1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::1]:8080/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://169.254.169.254/latest",
            "http://0xa9fea9fe/latest",
            "https://[fe80::1]/",
            "https://10.0.0.1/",
            "https://0.0.0.0/",
            "http://localhost/",
            "http://LOCALHOST./",
            "http://api.localhost:3000/",
            "foo://127.0.0.1./",
            "foo://[::1]/",
        ];
        for s in blocked {
            let err = empty
                .check_url(&url(s))
                .expect_err(&format!("{s} must be blocked"));
            assert_eq!(err.to_string(), "destination address is not allowed");
        }
        assert_eq!(
            empty.check_url(&url("http://2130706433/")),
            Err(Blocked {
                addr: Some(ip("127.0.0.1"))
            })
        );
        for s in [
            "https://example.com/",
            "https://8.8.8.8/",
            "https://[2606:4700:4700::1111]/hook",
            "http://localhost.example.com/",
            "https://notlocalhost/",
            "mailto:ops@example.com",
        ] {
            assert_eq!(empty.check_url(&url(s)), Ok(()), "{s} must pass");
        }
        for s in [
            "http://127.1/",
            "http://[::1]:8080/",
            "http://localhost:8080/",
        ] {
            assert_eq!(
                loopback.check_url(&url(s)),
                Ok(()),
                "{s} allowed by loopback()"
            );
        }
        for s in ["http://169.254.169.254/latest", "https://[fe80::1]/"] {
            assert!(loopback.check_url(&url(s)).is_err(), "{s} still blocked");
        }
    }

    #[test]
    fn is_blocked_walks_the_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] Box<dyn StdError + Send + Sync>);

        let direct = Blocked { addr: None };
        assert!(is_blocked(&direct));
        assert!(is_blocked(&Outer(Box::new(direct))));
        let io = std::io::Error::other(direct);
        assert!(is_blocked(&io));
        assert!(is_blocked(&Outer(Box::new(std::io::Error::other(direct)))));
        let unrelated = std::io::Error::new(std::io::ErrorKind::NotFound, "no such host");
        assert!(!is_blocked(&unrelated));
        assert!(!is_blocked(&Outer(Box::new(unrelated))));
    }

    #[tokio::test]
    async fn resolver_filters_localhost() {
        let name = || "localhost".parse::<Name>().expect("valid name");

        let system: Arc<dyn NameLookup> = Arc::new(SystemLookup);
        let empty = FilteringResolver::new(Arc::new(AddressPolicy::default()), system.clone());
        let err = match empty.resolve(name()).await {
            Ok(addrs) => panic!("expected Blocked, got {:?}", addrs.collect::<Vec<_>>()),
            Err(err) => err,
        };
        assert!(is_blocked(&*err), "error should be Blocked: {err}");
        let blocked = err.downcast_ref::<Blocked>().expect("a Blocked");
        assert!(blocked.addr.is_some_and(|a| canonical(a).is_loopback()));

        let loopback = FilteringResolver::new(Arc::new(AddressPolicy::loopback()), system);
        let addrs: Vec<SocketAddr> = loopback
            .resolve(name())
            .await
            .expect("localhost resolves under loopback()")
            .collect();
        assert!(!addrs.is_empty());
        assert!(
            addrs.iter().all(|a| canonical(a.ip()).is_loopback()),
            "only loopback addresses: {addrs:?}"
        );
    }
}

#[cfg(test)]
mod resolver_tests {
    use super::*;
    use crate::net::lookup::FixedLookup;

    async fn resolve(policy: AddressPolicy, answer: &[&str]) -> Result<Vec<IpAddr>, Blocked> {
        let ips: Vec<IpAddr> = answer.iter().map(|a| a.parse().unwrap()).collect();
        let lookup = Arc::new(FixedLookup::new([("hooks.example.test", vec![ips])]));
        let resolver = FilteringResolver::new(Arc::new(policy), lookup);
        match resolver
            .resolve("hooks.example.test".parse().unwrap())
            .await
        {
            Ok(addrs) => Ok(addrs.map(|a| a.ip()).collect()),
            Err(e) => Err(*e.downcast_ref::<Blocked>().expect("a Blocked")),
        }
    }

    #[tokio::test]
    async fn one_non_public_address_refuses_the_whole_answer() {
        let public = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"];
        assert_eq!(
            resolve(AddressPolicy::default(), &public)
                .await
                .unwrap()
                .len(),
            2
        );
        for private in [
            "10.0.0.1",
            "169.254.169.254",
            "fd00::1",
            "::ffff:192.168.0.1",
        ] {
            let refused = resolve(AddressPolicy::default(), &[public[0], private, public[1]])
                .await
                .expect_err("a mixed answer is refused");
            assert_eq!(refused.addr, Some(private.parse().unwrap()));
        }
        let allowed = AddressPolicy::parse_allowlist("10.0.0.0/8").unwrap();
        assert_eq!(
            resolve(allowed, &[public[0], "10.0.0.1"])
                .await
                .unwrap()
                .len(),
            2,
            "allowlisted addresses may be mixed with public ones"
        );
    }
}
