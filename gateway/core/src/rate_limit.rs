//! Rate limits and the auth-failure lockout: token buckets per API key, per org and per client address,
//! the lockout of an address that keeps failing authentication, and which address is the client's when a
//! trusted proxy forwarded the request.
//!
//! The buckets are GCRA cells (`governor`) keyed in sharded maps: a check hashes the key, takes one shard's
//! lock for a compare-and-swap on one atomic, and never touches the store, so a call pays well under a
//! microsecond. Front doors turn a [`Refusal`] into their own answer: the pipeline into a tool error the
//! agent reads (audited as refused), the HTTP edge into a 429 with `Retry-After`.
//!
//! Memory is bounded. Key and org buckets exist only for keys that authenticated, so there are never more
//! than the store has keys and orgs. Address state grows with the addresses that call; entries that no
//! longer differ from a fresh one are dropped by [`EdgeLimits::sweep`] (every few seconds) and, past
//! [`MAX_TRACKED`] entries, on the spot.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use crate::auth::AuthContext;
use crate::config::{LockoutPolicy, Rate, RateLimitSettings};
use crate::service::{ErrorKind, ToolError};

/// The rule id of a call refused by a rate limit.
pub const RATE_LIMITED: &str = "rate_limited";

/// Keyed address state past which stale entries are dropped at once rather than at the next sweep.
pub const MAX_TRACKED: usize = 100_000;
/// An address bucket looks at its size once per this many checks (counting entries visits every shard).
const SIZE_CHECK_EVERY: u32 = 1_024;
/// How often [`EdgeLimits::sweep_every`] drops stale address state.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Which limit refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Key,
    Org,
    Address,
    Lockout,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Key => "key",
            Limit::Org => "org",
            Limit::Address => "address",
            Limit::Lockout => "lockout",
        }
    }
}

/// What the refused caller exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exceeded {
    Rate(Rate),
    /// A lockout of `length` in all, after `failures` failed authentications.
    Lockout {
        length: Duration,
        failures: u32,
    },
}

/// A refusal: which limit, whose, the numbers, and when to retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub limit: Limit,
    /// The key, org or address as the message names it.
    pub who: String,
    pub exceeded: Exceeded,
    pub retry_after: Duration,
}

impl Refusal {
    /// Whole seconds to wait, rounded up and at least 1 (what `Retry-After` carries).
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }

    /// What the caller is told: the limit, the numbers and when to retry.
    pub fn message(&self) -> String {
        let retry = self.retry_after_secs();
        match (self.limit, self.exceeded) {
            (Limit::Lockout, Exceeded::Lockout { length, failures }) => format!(
                "too many failed authentications: address {} is locked out for {} s after {failures} failed \
                 attempts; retry after {retry} s with a valid API key",
                self.who,
                length.as_secs().max(1),
            ),
            (Limit::Address, Exceeded::Rate(r)) => format!(
                "rate limit: address {} sent more than {} requests per minute (bursts up to {}); retry after \
                 {retry} s",
                self.who, r.per_minute, r.burst
            ),
            (limit, Exceeded::Rate(r)) => {
                let (what, setting) = match limit {
                    Limit::Org => (
                        format!("org {} (all its keys together)", self.who),
                        "org_per_minute",
                    ),
                    _ => (format!("key {}", self.who), "key_per_minute"),
                };
                format!(
                    "rate limit: {what} made more than {} calls per minute (bursts up to {}); retry after {retry} \
                     s. The call was not run; the operator can raise [rate_limits] {setting}.",
                    r.per_minute, r.burst
                )
            }
            (_, Exceeded::Lockout { .. }) => format!("{} is locked out; retry after {retry} s", self.who),
        }
    }

    /// The tool error an agent reads: refused (audited `denied`) with rule [`RATE_LIMITED`].
    pub fn tool_error(&self) -> ToolError {
        ToolError {
            kind: ErrorKind::Denied,
            rule: Some(RATE_LIMITED.to_owned()),
            message: self.message(),
            line: None,
            column: None,
        }
    }
}

type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One token bucket per key.
struct Bucket<K: Hash + Eq + Clone, C: Clock> {
    rate: Rate,
    limiter: Keyed<K, C>,
    clock: C,
    checks: AtomicU32,
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> Bucket<K, C> {
    fn new(rate: Option<Rate>, clock: &C) -> Option<Self> {
        let rate = rate?;
        let quota =
            Quota::per_minute(NonZeroU32::new(rate.per_minute)?).allow_burst(NonZeroU32::new(rate.burst)?);
        Some(Bucket {
            rate,
            limiter: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            clock: clock.clone(),
            checks: AtomicU32::new(0),
        })
    }

    /// Takes one token for `key`, or says how long until there is one.
    fn take(&self, key: &K) -> Result<(), Duration> {
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Drops stale entries now when there are too many (looked at once per [`SIZE_CHECK_EVERY`] calls).
    fn bound(&self) {
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SIZE_CHECK_EVERY)
            && self.limiter.len() > MAX_TRACKED
        {
            self.limiter.retain_recent();
        }
    }

    fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Per-key and per-org limits on tool calls, checked by the pipeline for every front door.
pub struct CallLimits<C: Clock = DefaultClock> {
    key: Option<Bucket<String, C>>,
    org: Option<Bucket<String, C>>,
}

impl CallLimits<DefaultClock> {
    pub fn new(settings: &RateLimitSettings) -> Self {
        CallLimits::with_clock(settings, DefaultClock::default())
    }
}

impl<C: Clock + Clone> CallLimits<C> {
    pub fn with_clock(settings: &RateLimitSettings, clock: C) -> Self {
        CallLimits {
            key: Bucket::new(settings.key, &clock),
            org: Bucket::new(settings.org, &clock),
        }
    }

    /// Takes a token from the key's bucket, then from its org's. The key comes first so that a key over its
    /// own limit does not drain its org's bucket for the other keys.
    pub fn check(&self, auth: &AuthContext) -> Result<(), Refusal> {
        if let Some(bucket) = &self.key {
            bucket.take(&auth.key_id).map_err(|wait| Refusal {
                limit: Limit::Key,
                who: format!("'{}' ({}…)", auth.key_name, auth.key_prefix),
                exceeded: Exceeded::Rate(bucket.rate),
                retry_after: wait,
            })?;
        }
        if let Some(bucket) = &self.org {
            bucket.take(&auth.org_id).map_err(|wait| Refusal {
                limit: Limit::Org,
                who: format!("'{}'", auth.org_id),
                exceeded: Exceeded::Rate(bucket.rate),
                retry_after: wait,
            })?;
        }
        Ok(())
    }
}

/// The address a limit applies to: IPv4 as it is (also when it arrives IPv4-mapped), IPv6 by its /64,
/// which is what one host or customer usually holds.
fn subject(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

fn show(subject: IpAddr) -> String {
    match subject {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("{v6}/64"),
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The client's address: the connection's peer, unless the peer is a trusted proxy, in which case the
/// `X-Forwarded-For` entries (`forwarded_for`: the header's values in the order received) are read from the
/// right, each believed only when the hop that added it is trusted. An entry that is not an address stops
/// the walk at the last believed hop.
pub fn client_address(peer: IpAddr, forwarded_for: &[&str], trusted: &[ipnet::IpNet]) -> IpAddr {
    let mut client = canonical(peer);
    if trusted.is_empty() {
        return client;
    }
    for hop in forwarded_for.iter().rev().flat_map(|value| value.rsplit(',')) {
        if !trusted.iter().any(|net| net.contains(&client)) {
            break;
        }
        let hop = hop.trim();
        let parsed = hop
            .parse::<IpAddr>()
            .ok()
            .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()));
        match parsed {
            Some(ip) => client = canonical(ip),
            None => break,
        }
    }
    client
}

/// One address's failed authentications.
#[derive(Clone, Copy, Debug)]
struct Strikes<I> {
    /// Failures since the address was last forgiven.
    failures: u32,
    /// Lockouts so far; the next lasts `first × 2^lockouts`, at most `max`.
    lockouts: u32,
    locked_until: Option<I>,
    /// The length of the latest lockout.
    length: Duration,
    /// The latest failure or the end of the latest lockout, whichever is later: the history is forgiven
    /// after `max` of quiet from here.
    quiet_since: I,
}

/// The length of the lockout after `lockouts` earlier ones: doubling from `first`, at most `max`.
fn lockout_length(policy: &LockoutPolicy, lockouts: u32) -> Duration {
    policy
        .first
        .saturating_mul(2u32.saturating_pow(lockouts))
        .min(policy.max)
}

/// Addresses that failed authentication, and their lockouts.
struct Lockouts<C: Clock> {
    policy: LockoutPolicy,
    clock: C,
    addresses: DashMap<IpAddr, Strikes<C::Instant>>,
}

impl<C: Clock> Lockouts<C> {
    fn check(&self, subject: IpAddr) -> Result<(), Refusal> {
        let Some(strikes) = self.addresses.get(&subject) else {
            return Ok(());
        };
        let now = self.clock.now();
        match strikes.locked_until {
            Some(until) if until > now => Err(Refusal {
                limit: Limit::Lockout,
                who: show(subject),
                exceeded: Exceeded::Lockout {
                    length: strikes.length,
                    failures: strikes.failures,
                },
                retry_after: until.duration_since(now).into(),
            }),
            _ => Ok(()),
        }
    }

    /// Counts a failure; the length of the lockout it starts, if it starts one. After the first lockout,
    /// every further failure (until the address is forgiven) locks it again for twice as long.
    fn failed(&self, subject: IpAddr) -> Option<Duration> {
        let now = self.clock.now();
        if !self.addresses.contains_key(&subject) && self.addresses.len() >= MAX_TRACKED {
            self.forget_quiet();
            if self.addresses.len() >= MAX_TRACKED {
                tracing::warn!(
                    address = %subject,
                    "too many addresses failing authentication at once to track another"
                );
                return None;
            }
        }
        let mut strikes = self.addresses.entry(subject).or_insert(Strikes {
            failures: 0,
            lockouts: 0,
            locked_until: None,
            length: Duration::ZERO,
            quiet_since: now,
        });
        // A request already past the check when the lockout began neither counts nor extends it.
        if strikes.locked_until.is_some_and(|until| until > now) {
            return None;
        }
        strikes.failures = strikes.failures.saturating_add(1);
        strikes.quiet_since = now;
        if strikes.lockouts == 0 && strikes.failures < self.policy.failures {
            return None;
        }
        let length = lockout_length(&self.policy, strikes.lockouts);
        let until = now + Nanos::from(length);
        strikes.locked_until = Some(until);
        strikes.quiet_since = until;
        strikes.length = length;
        strikes.lockouts = strikes.lockouts.saturating_add(1);
        Some(length)
    }

    /// A good key forgives an address that is not locked out; a locked-out one stays locked until its time.
    fn succeeded(&self, subject: IpAddr) {
        // Almost every request succeeds from an address with no record: a shared read, no shard write lock.
        if !self.addresses.contains_key(&subject) {
            return;
        }
        let now = self.clock.now();
        self.addresses
            .remove_if(&subject, |_, s| s.locked_until.is_none_or(|until| until <= now));
    }

    /// Forgets addresses quiet for `max` since their latest failure or lockout.
    fn forget_quiet(&self) {
        let now = self.clock.now();
        let max = self.policy.max;
        self.addresses
            .retain(|_, s| Duration::from(now.duration_since(s.quiet_since)) < max);
        self.addresses.shrink_to_fit();
    }
}

/// The HTTP edge's limits: requests per client address, and the lockout of addresses that fail
/// authentication. The front door asks [`EdgeLimits::admit`] before authenticating and reports the outcome.
pub struct EdgeLimits<C: Clock = DefaultClock> {
    address: Option<Bucket<IpAddr, C>>,
    lockouts: Option<Lockouts<C>>,
    trusted: Vec<ipnet::IpNet>,
}

impl EdgeLimits<DefaultClock> {
    pub fn new(settings: &RateLimitSettings) -> Self {
        EdgeLimits::with_clock(settings, DefaultClock::default())
    }

    /// Drops stale address state every [`SWEEP_EVERY`] until `shutdown`.
    pub fn sweep_every(self: &Arc<Self>, shutdown: CancellationToken) {
        if self.address.is_none() && self.lockouts.is_none() {
            return;
        }
        let limits = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = tick.tick() => limits.sweep(),
                }
            }
        });
    }
}

impl<C: Clock + Clone> EdgeLimits<C> {
    pub fn with_clock(settings: &RateLimitSettings, clock: C) -> Self {
        EdgeLimits {
            address: Bucket::new(settings.ip, &clock),
            lockouts: settings.lockout.map(|policy| Lockouts {
                policy,
                clock: clock.clone(),
                addresses: DashMap::new(),
            }),
            trusted: settings.trusted_proxies.clone(),
        }
    }

    /// The client's address (see [`client_address`]).
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        client_address(peer, forwarded_for, &self.trusted)
    }

    /// Whether a request from `client` may go on: not locked out, and within the address's rate. A
    /// locked-out address takes no token.
    pub fn admit(&self, client: IpAddr) -> Result<(), Refusal> {
        let subject = subject(client);
        if let Some(lockouts) = &self.lockouts {
            lockouts.check(subject)?;
        }
        if let Some(bucket) = &self.address {
            bucket.bound();
            bucket.take(&subject).map_err(|wait| Refusal {
                limit: Limit::Address,
                who: show(subject),
                exceeded: Exceeded::Rate(bucket.rate),
                retry_after: wait,
            })?;
        }
        Ok(())
    }

    /// Counts a failed authentication from `client`; the length of the lockout it starts, if any.
    pub fn auth_failed(&self, client: IpAddr) -> Option<Duration> {
        self.lockouts.as_ref()?.failed(subject(client))
    }

    /// A successful authentication from `client`: its failures are forgiven unless it is locked out.
    pub fn auth_succeeded(&self, client: IpAddr) {
        if let Some(lockouts) = &self.lockouts {
            lockouts.succeeded(subject(client));
        }
    }

    /// Drops address state that no longer differs from a fresh one.
    pub fn sweep(&self) {
        if let Some(bucket) = &self.address {
            bucket.sweep();
        }
        if let Some(lockouts) = &self.lockouts {
            lockouts.forget_quiet();
        }
    }

    /// Entries held (address buckets, lockout records), for tests and diagnostics.
    pub fn tracked(&self) -> (usize, usize) {
        (
            self.address.as_ref().map_or(0, |b| b.limiter.len()),
            self.lockouts.as_ref().map_or(0, |l| l.addresses.len()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use pretty_assertions::assert_eq;

    fn settings() -> RateLimitSettings {
        RateLimitSettings {
            key: Some(Rate {
                per_minute: 60,
                burst: 3,
            }),
            org: Some(Rate {
                per_minute: 120,
                burst: 4,
            }),
            ip: Some(Rate {
                per_minute: 600,
                burst: 2,
            }),
            lockout: Some(LockoutPolicy {
                failures: 3,
                first: Duration::from_secs(1),
                max: Duration::from_secs(4),
            }),
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        }
    }

    fn auth(org: &str, key: &str) -> AuthContext {
        let mut auth = crate::testing::ctx().auth;
        auth.org_id = org.into();
        auth.key_id = key.into();
        auth.key_name = format!("{key}-name");
        auth.key_prefix = format!("sluice_{key}");
        auth
    }

    /// What one step of a table sees: allowed, or refused by a limit with a retry in whole seconds.
    type Seen = Result<(), (Limit, u64)>;

    fn outcome(r: Result<(), Refusal>) -> Seen {
        r.map_err(|e| (e.limit, e.retry_after_secs()))
    }

    /// Key and org buckets: a key is cut at its burst and refills at its rate; another key of the org
    /// runs until the org's bucket is empty; a key of another org is unaffected. The clock is injected.
    #[test]
    fn key_and_org_buckets_hold_their_limits() {
        let clock = FakeRelativeClock::default();
        let limits = CallLimits::with_clock(&settings(), clock.clone());
        let (a, b, other) = (auth("acme", "a"), auth("acme", "b"), auth("other", "c"));
        let ok = Ok(());
        let steps: Vec<(u64, &AuthContext, Seen)> = vec![
            (0, &a, ok),
            (0, &a, ok),
            (0, &a, ok),
            // Burst of 3 spent; one token a second at 60 a minute.
            (0, &a, Err((Limit::Key, 1))),
            (0, &a, Err((Limit::Key, 1))),
            (0, &b, ok),
            // The org's burst of 4 is spent by a's 3 and b's 1 (a's refused calls took nothing).
            (0, &b, Err((Limit::Org, 1))),
            (0, &other, ok),
            (0, &other, ok),
            (1_000, &a, ok),
            (0, &a, Err((Limit::Key, 1))),
            (500, &a, Err((Limit::Key, 1))),
            (60_000, &a, ok),
        ];
        for (i, (advance_ms, who, expected)) in steps.into_iter().enumerate() {
            clock.advance(Duration::from_millis(advance_ms));
            assert_eq!(outcome(limits.check(who)), expected, "step {i}");
        }
    }

    #[test]
    fn refusals_say_which_limit_the_numbers_and_when_to_retry() {
        let clock = FakeRelativeClock::default();
        let limits = CallLimits::with_clock(&settings(), clock.clone());
        let a = auth("acme", "a");
        for _ in 0..3 {
            limits.check(&a).unwrap();
        }
        let refusal = limits.check(&a).unwrap_err();
        assert_eq!(
            refusal.message(),
            "rate limit: key 'a-name' (sluice_a…) made more than 60 calls per minute (bursts up to 3); retry \
             after 1 s. The call was not run; the operator can raise [rate_limits] key_per_minute."
        );
        let error = refusal.tool_error();
        assert_eq!(
            (error.kind, error.rule.as_deref()),
            (ErrorKind::Denied, Some(RATE_LIMITED))
        );
        let org = Refusal {
            limit: Limit::Org,
            who: "'acme'".into(),
            exceeded: Exceeded::Rate(Rate {
                per_minute: 120,
                burst: 4,
            }),
            retry_after: Duration::from_millis(2_100),
        };
        assert_eq!(
            org.message(),
            "rate limit: org 'acme' (all its keys together) made more than 120 calls per minute (bursts up to \
             4); retry after 3 s. The call was not run; the operator can raise [rate_limits] org_per_minute."
        );
        let edge = EdgeLimits::with_clock(&settings(), clock);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        edge.admit(ip).unwrap();
        edge.admit(ip).unwrap();
        assert_eq!(
            edge.admit(ip).unwrap_err().message(),
            "rate limit: address 192.0.2.7 sent more than 600 requests per minute (bursts up to 2); retry after 1 s"
        );
        for _ in 0..3 {
            edge.auth_failed(ip);
        }
        assert_eq!(
            edge.admit(ip).unwrap_err().message(),
            "too many failed authentications: address 192.0.2.7 is locked out for 1 s after 3 failed attempts; \
             retry after 1 s with a valid API key"
        );
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        for (wait_ms, secs) in [
            (0, 1),
            (1, 1),
            (999, 1),
            (1_000, 1),
            (1_001, 2),
            (2_100, 3),
            (60_000, 60),
        ] {
            let refusal = Refusal {
                limit: Limit::Key,
                who: String::new(),
                exceeded: Exceeded::Rate(Rate {
                    per_minute: 1,
                    burst: 1,
                }),
                retry_after: Duration::from_millis(wait_ms),
            };
            assert_eq!(refusal.retry_after_secs(), secs, "{wait_ms} ms");
        }
    }

    #[derive(Clone, Copy, Debug)]
    enum Step {
        Fail,
        Succeed,
        Wait(u64),
        Sweep,
    }

    /// The lockout: N failures lock the address; each failure after a lockout locks it again for twice as
    /// long, up to the max; a success does not unlock it early but forgives it once unlocked; a quiet address
    /// is forgotten. Each step's expected value is what `admit` says right after it.
    #[test]
    fn failed_authentication_locks_out_with_doubling_backoff() {
        use Step::*;
        let clock = FakeRelativeClock::default();
        let mut s = settings();
        s.ip = None;
        let edge = EdgeLimits::with_clock(&s, clock.clone());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let locked = |secs| Err((Limit::Lockout, secs));
        let steps: Vec<(Step, Seen)> = vec![
            (Fail, Ok(())),
            (Fail, Ok(())),
            (Fail, locked(1)),
            (Succeed, locked(1)),
            (Wait(1_000), Ok(())),
            (Fail, locked(2)),
            (Wait(1_500), locked(1)),
            (Wait(500), Ok(())),
            (Fail, locked(4)),
            (Wait(4_000), Ok(())),
            // Capped at max (4 s).
            (Fail, locked(4)),
            (Wait(4_000), Ok(())),
            // A good key forgives an address that is not locked out: three failures again before a lockout.
            (Succeed, Ok(())),
            (Fail, Ok(())),
            (Fail, Ok(())),
            (Fail, locked(1)),
            (Wait(1_000), Ok(())),
            // Quiet for max (4 s) after the lockout ended: forgotten by the sweep.
            (Wait(4_000), Ok(())),
            (Sweep, Ok(())),
            (Fail, Ok(())),
        ];
        for (i, (step, expected)) in steps.into_iter().enumerate() {
            match step {
                Fail => {
                    edge.auth_failed(ip);
                }
                Succeed => edge.auth_succeeded(ip),
                Wait(ms) => clock.advance(Duration::from_millis(ms)),
                Sweep => edge.sweep(),
            }
            assert_eq!(outcome(edge.admit(ip)), expected, "step {i}: {step:?}");
        }
        // Another address was never affected.
        assert_eq!(outcome(edge.admit("192.0.2.8".parse().unwrap())), Ok(()));
    }

    #[test]
    fn lockouts_double_up_to_the_max() {
        let policy = LockoutPolicy {
            failures: 5,
            first: Duration::from_secs(2),
            max: Duration::from_secs(60),
        };
        let lengths: Vec<u64> = (0..8).map(|n| lockout_length(&policy, n).as_secs()).collect();
        assert_eq!(lengths, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(lockout_length(&policy, u32::MAX).as_secs(), 60);
    }

    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_forwarded_the_request() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let cases: [(&str, &[&str], &str); 10] = [
            // Untrusted peers are the client, whatever they claim.
            ("192.0.2.7", &["198.51.100.1"], "192.0.2.7"),
            ("10.1.2.3", &[], "10.1.2.3"),
            ("10.1.2.3", &["198.51.100.1"], "198.51.100.1"),
            // Read from the right: the first hop not added by a trusted proxy is the client.
            ("10.1.2.3", &["203.0.113.9, 198.51.100.1"], "198.51.100.1"),
            ("10.1.2.3", &["203.0.113.9, 10.0.0.5"], "203.0.113.9"),
            ("10.1.2.3", &["203.0.113.9", "10.0.0.5"], "203.0.113.9"),
            ("10.1.2.3", &["garbage, 10.0.0.5"], "10.0.0.5"),
            ("10.1.2.3", &["198.51.100.1:4711"], "198.51.100.1"),
            ("::1", &["[2001:db8::1]:443"], "2001:db8::1"),
            ("::ffff:10.0.0.1", &["198.51.100.1"], "198.51.100.1"),
        ];
        for (peer, forwarded, expected) in cases {
            let got = client_address(peer.parse().unwrap(), forwarded, &trusted);
            assert_eq!(got.to_string(), expected, "{peer} {forwarded:?}");
        }
        assert_eq!(
            client_address("10.1.2.3".parse().unwrap(), &["198.51.100.1"], &[]).to_string(),
            "10.1.2.3"
        );
    }

    /// IPv6 clients share their /64's bucket; an IPv4-mapped address is its IPv4 address.
    #[test]
    fn addresses_are_limited_by_their_subject() {
        let cases = [
            ("192.0.2.7", "192.0.2.7"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"),
        ];
        for (ip, expected) in cases {
            assert_eq!(subject(ip.parse().unwrap()).to_string(), expected);
        }
        let edge = EdgeLimits::with_clock(&settings(), FakeRelativeClock::default());
        edge.admit("2001:db8::1".parse().unwrap()).unwrap();
        edge.admit("2001:db8::2".parse().unwrap()).unwrap();
        let refusal = edge.admit("2001:db8::3".parse().unwrap()).unwrap_err();
        assert_eq!(refusal.who, "2001:db8::/64");
    }

    /// A flood of addresses leaves nothing behind once their buckets are full again.
    #[test]
    fn stale_address_state_is_swept() {
        let clock = FakeRelativeClock::default();
        let edge = EdgeLimits::with_clock(&settings(), clock.clone());
        for i in 0..2_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            edge.admit(ip).unwrap();
            edge.auth_failed(ip);
        }
        assert_eq!(edge.tracked(), (2_000, 2_000));
        clock.advance(Duration::from_secs(5));
        edge.sweep();
        assert_eq!(edge.tracked(), (0, 0));
    }

    #[test]
    fn limits_that_are_off_never_refuse() {
        let clock = FakeRelativeClock::default();
        let off = RateLimitSettings::off();
        let calls = CallLimits::with_clock(&off, clock.clone());
        let edge = EdgeLimits::with_clock(&off, clock);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..10_000 {
            calls.check(&auth("acme", "a")).unwrap();
            edge.admit(ip).unwrap();
            assert_eq!(edge.auth_failed(ip), None);
        }
        assert_eq!(edge.tracked(), (0, 0));
    }
}
