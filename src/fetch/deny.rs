//! `[http].deny_networks`: addresses marsad never connects to.
//!
//! A source, or any site a source redirects to, could point marsad at a machine on the local
//! network (a router's admin page, a cloud metadata service at 169.254.169.254). The check is made
//! on the address actually connected to, not on the host name: an IP literal in a URL is checked
//! before each hop, and a host name is checked after DNS resolution by [`DenyResolver`], so a name
//! that resolves to a denied address is refused too.
//!
//! Entries are CIDR blocks (`"10.0.0.0/8"`, `"fd00::/8"`), single addresses (`"192.0.2.7"`), or
//! one of the names `"private"`, `"loopback"`, `"link-local"` for the usual blocks. An IPv4
//! address written as IPv6 (`::ffff:10.0.0.1`) is matched against the IPv4 blocks.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// One denied block of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `"10.0.0.0/8"`, `"::1/128"` or a bare address (a block of one). Bits set past the
    /// prefix are an error: `"10.1.0.0/8"` is most likely a typo for `/16`.
    pub fn parse(text: &str) -> Result<Network, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            format!(
                "{text:?} is not an IP network; write a CIDR block like \"10.0.0.0/8\" or \
                 \"fd00::/8\", a single address, or one of \"private\", \"loopback\", \"link-local\""
            )
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => {
                    return Err(format!(
                        "{text:?}: the prefix length must be a number from 0 to {max}"
                    ));
                }
            },
        };
        let network = Network { addr, prefix };
        if network.masked() != addr {
            return Err(format!(
                "{text:?} has bits set after the first {prefix}; did you mean \"{}/{prefix}\"?",
                network.masked()
            ));
        }
        Ok(network)
    }

    /// The address with the bits past the prefix cleared.
    fn masked(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from_bits(a.to_bits() & mask32(self.prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from_bits(a.to_bits() & mask128(self.prefix))),
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask32(self.prefix);
                ip.to_bits() & mask == net.to_bits()
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask128(self.prefix);
                ip.to_bits() & mask == net.to_bits()
            }
            _ => false,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// The named groups an entry may use instead of writing the blocks out.
const GROUPS: &[(&str, &[&str])] = &[
    (
        "private",
        &[
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "fc00::/7",
        ],
    ),
    ("loopback", &["127.0.0.0/8", "::1/128"]),
    ("link-local", &["169.254.0.0/16", "fe80::/10"]),
];

/// The default: link-local addresses, where cloud metadata services answer; loopback and the
/// local network stay reachable (the demo and tests serve on 127.0.0.1).
pub const DEFAULT_DENY: &[&str] = &["link-local"];

/// The configured list, each block with the entry it came from (for messages).
#[derive(Debug, Clone, Default)]
pub struct DenyList {
    entries: Vec<(Network, String)>,
}

impl DenyList {
    /// Nothing denied.
    pub fn none() -> DenyList {
        DenyList::default()
    }

    /// Parses one entry (a block, an address or a group name) and adds it.
    pub fn add(&mut self, entry: &str) -> Result<(), String> {
        let entry = entry.trim();
        if let Some((_, blocks)) = GROUPS.iter().find(|(name, _)| *name == entry) {
            for block in *blocks {
                let network = Network::parse(block)?;
                self.entries.push((network, format!("{entry} ({network})")));
            }
        } else {
            let network = Network::parse(entry)?;
            self.entries.push((network, network.to_string()));
        }
        Ok(())
    }

    /// Builds a list from entries, stopping at the first bad one.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<DenyList, String> {
        let mut list = DenyList::none();
        for entry in entries {
            list.add(entry)?;
        }
        Ok(list)
    }

    /// The default list, [`DEFAULT_DENY`].
    pub fn default_list() -> DenyList {
        DenyList::parse(DEFAULT_DENY.iter().copied()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry that denies `ip`, if one does.
    pub fn denies(&self, ip: IpAddr) -> Option<&str> {
        self.entries
            .iter()
            .find(|(network, _)| network.contains(ip))
            .map(|(_, label)| label.as_str())
    }
}

/// A host name resolved only to denied addresses (or an address literal that is denied).
#[derive(Debug, Clone)]
pub struct Denied {
    pub host: String,
    pub addr: IpAddr,
    pub network: String,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let literal = self.host.trim_start_matches('[').trim_end_matches(']');
        if literal.parse::<IpAddr>().is_ok_and(|ip| ip == self.addr) {
            write!(f, "{} is in {}", self.host, self.network)?;
        } else {
            write!(f, "{} is {}, in {}", self.host, self.addr, self.network)?;
        }
        write!(f, ", which [http].deny_networks forbids")
    }
}

impl std::error::Error for Denied {}

/// The system resolver with denied addresses removed from its answers. A name left with no
/// address fails with [`Denied`], which the fetcher reports as [`super::FetchError::Denied`].
pub struct DenyResolver {
    pub deny: Arc<DenyList>,
}

impl reqwest::dns::Resolve for DenyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let deny = self.deny.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_denied = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match deny.denies(a.ip()) {
                    Some(network) => {
                        first_denied.get_or_insert_with(|| (a.ip(), network.to_string()));
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty()
                && let Some((addr, network)) = first_denied
            {
                tracing::debug!(%host, %addr, %network, "host name resolves only to denied addresses");
                return Err(Box::new(Denied {
                    host,
                    addr,
                    network,
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_contain_their_addresses_only() {
        let net = Network::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.255.1.2")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(!net.contains(ip("::1")));
        let one = Network::parse("127.0.0.2").unwrap();
        assert!(one.contains(ip("127.0.0.2")));
        assert!(!one.contains(ip("127.0.0.1")));
        let v6 = Network::parse("fc00::/7").unwrap();
        assert!(v6.contains(ip("fd12:3456::1")));
        assert!(!v6.contains(ip("fe80::1")));
        let all = Network::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")));
    }

    #[test]
    fn ipv4_written_as_ipv6_is_matched_against_ipv4_blocks() {
        let list = DenyList::parse(["loopback"]).unwrap();
        assert!(list.denies(ip("::ffff:127.0.0.1")).is_some());
        assert_eq!(list.denies(ip("::1")), Some("loopback (::1/128)"));
        assert_eq!(list.denies(ip("93.184.215.14")), None);
    }

    #[test]
    fn mistakes_are_explained() {
        let err = Network::parse("10.1.0.0/8").unwrap_err();
        assert!(err.contains("did you mean \"10.0.0.0/8\""), "{err}");
        let err = Network::parse("10.0.0.0/33").unwrap_err();
        assert!(err.contains("from 0 to 32"), "{err}");
        let err = DenyList::parse(["intranet"]).unwrap_err();
        assert!(err.contains("\"private\", \"loopback\""), "{err}");
    }

    #[test]
    fn the_default_denies_metadata_but_not_loopback() {
        let list = DenyList::default_list();
        assert!(list.denies(ip("169.254.169.254")).is_some());
        assert!(list.denies(ip("127.0.0.1")).is_none());
        assert!(list.denies(ip("192.168.1.1")).is_none());
    }
}
