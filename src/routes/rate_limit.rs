//! Per-client rate limits: a token bucket per client, and 429 with
//! `Retry-After` when a client has used up its burst.
//!
//! A client is its bearer token when the token is valid, else its address.
//! The address is the peer of the TCP connection, or, when that peer is one
//! of the trusted proxies, the nearest untrusted address in
//! `X-Forwarded-For`. Headers from untrusted peers are ignored, so a client
//! cannot pick its own bucket.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use crate::auth::Tokens;
use crate::error::Error;

/// Number of checked requests between two prunings of the buckets of quiet clients.
const PRUNE_EVERY: u64 = 4096;

/// The rate limiter and what it needs to tell clients apart.
pub struct ClientRateLimit {
    limiter: DefaultKeyedRateLimiter<String>,
    trusted_proxies: Vec<IpNet>,
    tokens: Option<Tokens>,
    checked: AtomicU64,
}

impl ClientRateLimit {
    /// Allows each client `per_second` requests per second on average and
    /// `burst` at once. `tokens` identify clients by bearer token.
    pub fn new(
        per_second: NonZeroU32,
        burst: NonZeroU32,
        trusted_proxies: Vec<IpNet>,
        tokens: Option<Tokens>,
    ) -> Self {
        ClientRateLimit {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            trusted_proxies,
            tokens,
            checked: AtomicU64::new(0),
        }
    }

    fn is_trusted(&self, address: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&address))
    }

    /// Names the client of a request.
    fn client_key(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> String {
        if let (Some(tokens), Some(token)) = (&self.tokens, bearer(headers))
            && let Some((_, name)) = tokens.check(token)
        {
            return format!("token:{name}");
        }
        let Some(peer) = peer else {
            return "address:unknown".into();
        };
        if !self.is_trusted(peer) {
            return format!("address:{peer}");
        }
        // The last entries were added by our own proxies; the first untrusted one from the right is the client.
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|v| v.trim().parse().ok())
            .collect();
        let client = forwarded
            .iter()
            .rev()
            .find(|address| !self.is_trusted(**address))
            .or(forwarded.first())
            .copied()
            .unwrap_or(peer);
        format!("address:{client}")
    }

    fn prune(&self) {
        if self.checked.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// Parses `--trusted-proxies`: comma-separated addresses or CIDR blocks.
pub fn parse_trusted_proxies(text: &str) -> crate::Result<Vec<IpNet>> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<IpNet>()
                .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    Error::InvalidParameter(format!(
                        "invalid address '{t}' in --trusted-proxies: expected an IP address or a CIDR block such as 10.0.0.0/8"
                    ))
                })
        })
        .collect()
}

/// Rejects requests of clients over their rate with 429. Probes and metrics are exempt, so
/// load balancers and Prometheus never get throttled.
pub(super) async fn limit_clients(
    State(limits): State<Arc<ClientRateLimit>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(request.uri().path(), "/health" | "/ready" | "/metrics") {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let key = limits.client_key(request.headers(), peer);
    limits.prune();
    match limits.limiter.check_key(&key) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            tracing::warn!(client = %key, retry_after_s = seconds, "request rate limited");
            let mut response = Error::TooManyRequests(format!(
                "too many requests from this client; retry after {seconds} s"
            ))
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(trusted: &str) -> ClientRateLimit {
        let one = NonZeroU32::new(1).unwrap();
        ClientRateLimit::new(one, one, parse_trusted_proxies(trusted).unwrap(), None)
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn untrusted_peer_cannot_choose_its_address() {
        let limits = limiter("10.0.0.0/8");
        let key = limits.client_key(&forwarded("203.0.113.9"), Some("198.51.100.7".parse().unwrap()));
        assert_eq!(key, "address:198.51.100.7");
    }

    #[test]
    fn trusted_proxy_passes_the_client_address() {
        let limits = limiter("10.0.0.0/8, 192.168.1.1");
        let headers = forwarded("1.2.3.4, 203.0.113.9, 10.1.2.3");
        let key = limits.client_key(&headers, Some("192.168.1.1".parse().unwrap()));
        assert_eq!(key, "address:203.0.113.9");
    }

    #[test]
    fn bad_proxy_list_is_rejected() {
        assert!(parse_trusted_proxies("10.0.0.0/33").is_err());
        assert!(parse_trusted_proxies("proxy.local").is_err());
    }
}
