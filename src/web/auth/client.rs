//! Who is on the other end: the client address (for the login rate limit and the failed-login
//! record) and whether the request came over https (for the cookie's `Secure` flag). Both come
//! from forwarded headers only when the peer is a configured trusted proxy: anyone else could
//! write them to dodge the rate limit.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;

use crate::config::{Config, IpRange};

/// The TCP peer, when the server recorded it (`into_make_service_with_connect_info`).
fn peer(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_canonical())
}

fn trusted(proxies: &[IpRange], ip: IpAddr) -> bool {
    proxies.iter().any(|r| r.contains(ip))
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy (entries further left were
/// written by the client and prove nothing). `"unknown"` when the server has no peer address.
pub fn client_address(config: &Config, parts: &Parts) -> String {
    let Some(peer) = peer(parts) else {
        return "unknown".to_owned();
    };
    let proxies = &config.server.trusted_proxies;
    if !trusted(proxies, peer) {
        return peer.to_string();
    }
    let forwarded: Vec<IpAddr> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !trusted(proxies, **ip))
        .or(forwarded.first())
        .unwrap_or(&peer)
        .to_string()
}

/// Whether the browser reached opswatch over https: `server.public_url` says so, or a trusted
/// proxy's `X-Forwarded-Proto` does.
pub fn over_https(config: &Config, parts: &Parts) -> bool {
    if config
        .server
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
    {
        return true;
    }
    peer(parts).is_some_and(|p| trusted(&config.server.trusted_proxies, p))
        && parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, xff: Option<&str>) -> Parts {
        let mut req = axum::http::Request::builder().uri("/login");
        if let Some(x) = xff {
            req = req.header("x-forwarded-for", x);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        parts
    }

    fn config(proxies: &[&str]) -> Config {
        let mut c = Config::default();
        c.server.trusted_proxies = proxies.iter().map(|p| p.parse().unwrap()).collect();
        c
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let none = config(&[]);
        let p = parts("203.0.113.9:5000", Some("198.51.100.1"));
        assert_eq!(client_address(&none, &p), "203.0.113.9");
        let proxy = config(&["127.0.0.1", "10.0.0.0/8"]);
        let p = parts("127.0.0.1:5000", Some("1.2.3.4, 198.51.100.7, 10.0.0.3"));
        assert_eq!(client_address(&proxy, &p), "198.51.100.7");
        let p = parts("127.0.0.1:5000", None);
        assert_eq!(client_address(&proxy, &p), "127.0.0.1");
        let p = parts("192.0.2.5:5000", Some("1.2.3.4"));
        assert_eq!(client_address(&proxy, &p), "192.0.2.5");
    }
}
