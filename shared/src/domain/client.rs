//! Who a per-client limit counts: one customer, as far as an address tells.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// The client a per-IP limit counts: an IPv4 address, or the /64 an IPv6 address is in.
/// An IPv6 customer is given a whole /64 (RFC 6177; SLAAC needs one), so counting its
/// addresses one by one would give it 2^64 buckets. An IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`, what a dual-stack socket reports) is the IPv4 client it maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientNetwork {
    V4(std::net::Ipv4Addr),
    /// The address with its last 64 bits cleared.
    V6Slash64(Ipv6Addr),
}

impl ClientNetwork {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientNetwork::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientNetwork::V4(v4),
                None => {
                    ClientNetwork::V6Slash64(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX)))
                }
            },
        }
    }
}

impl fmt::Display for ClientNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientNetwork::V4(v4) => write!(f, "{v4}"),
            ClientNetwork::V6Slash64(prefix) => write!(f, "{prefix}/64"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> String {
        ClientNetwork::of(raw.parse().unwrap()).to_string()
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let one_customer = [
            "2001:db8:1:2::1",
            "2001:db8:1:2::2",
            "2001:db8:1:2:ffff:ffff:ffff:ffff",
            "2001:db8:1:2:1234:5678:9abc:def0",
        ];
        for address in one_customer {
            assert_eq!(key(address), "2001:db8:1:2::/64", "{address}");
        }
        // The next /64 is another customer.
        assert_eq!(key("2001:db8:1:3::1"), "2001:db8:1:3::/64");
        assert_eq!(key("::1"), "::/64");
    }

    #[test]
    fn ipv4_clients_are_counted_by_their_address_mapped_or_not() {
        assert_eq!(key("198.51.100.7"), "198.51.100.7");
        assert_eq!(key("198.51.100.8"), "198.51.100.8");
        assert_eq!(key("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(
            ClientNetwork::of("::ffff:198.51.100.7".parse().unwrap()),
            ClientNetwork::of("198.51.100.7".parse().unwrap())
        );
        // Two mapped addresses are two clients, not one /64 (they share their first 64 bits).
        assert_ne!(key("::ffff:198.51.100.7"), key("::ffff:198.51.100.8"));
    }
}
