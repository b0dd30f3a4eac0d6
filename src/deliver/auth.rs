//! The access token of one destination: none, a fixed bearer secret, or a
//! token fetched from the vendor and kept until shortly before it expires
//! or until the vendor refuses it.
//!
//! The cache is data; `send` makes the token request (through the throttle,
//! like every request) when [`TokenCache::needs_fetch`] says so. Each token
//! has a generation, so that when several requests in flight are refused
//! with the same expired token, only the first one fetches a new token.

use std::time::{Duration, Instant};

use secrecy::SecretString;

use super::vendor::{Auth, Token};

/// The token requests of one destination carry.
pub struct TokenCache {
    auth: Auth,
    current: Option<Cached>,
    generation: u64,
}

struct Cached {
    value: SecretString,
    refresh_at: Option<Instant>,
}

/// How long before its stated expiry a token is replaced: a tenth of its
/// life, at most a minute, so requests in flight do not carry a token
/// that expires on the way.
fn margin(expires_in: Duration) -> Duration {
    (expires_in / 10).min(Duration::from_secs(60))
}

impl TokenCache {
    pub fn new(auth: Auth) -> TokenCache {
        TokenCache {
            auth,
            current: None,
            generation: 0,
        }
    }

    /// Whether a token must be fetched before the next request.
    pub fn needs_fetch(&self, now: Instant) -> bool {
        matches!(self.auth, Auth::Fetched)
            && self
                .current
                .as_ref()
                .is_none_or(|c| c.refresh_at.is_some_and(|at| now >= at))
    }

    /// The token to put on a request, with its generation; `None` when the
    /// destination takes no credentials.
    pub fn current(&self) -> Option<(SecretString, u64)> {
        match &self.auth {
            Auth::None => None,
            Auth::Bearer(secret) => Some((secret.clone(), 0)),
            Auth::Fetched => self
                .current
                .as_ref()
                .map(|c| (c.value.clone(), self.generation)),
        }
    }

    /// A token fetched by a request that started at `requested_at` (its
    /// lifetime runs from when the vendor issued it, which is no earlier).
    pub fn store(&mut self, token: Token, requested_at: Instant) {
        let refresh_at = token
            .expires_in
            .map(|life| requested_at + life.saturating_sub(margin(life)));
        self.current = Some(Cached {
            value: token.value,
            refresh_at,
        });
        self.generation += 1;
    }

    /// The vendor refused the token of `generation`: drop it unless a newer
    /// one was fetched since. Returns whether a fixed token was refused
    /// (which no refresh can fix).
    pub fn refused(&mut self, generation: u64) -> bool {
        match self.auth {
            Auth::Fetched => {
                if generation == self.generation {
                    self.current = None;
                }
                false
            }
            Auth::Bearer(_) | Auth::None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str, life: Option<u64>) -> Token {
        Token {
            value: SecretString::from(text.to_string()),
            expires_in: life.map(Duration::from_secs),
        }
    }

    #[test]
    fn a_fetched_token_is_replaced_before_it_expires() {
        let t0 = Instant::now();
        let mut cache = TokenCache::new(Auth::Fetched);
        assert!(cache.needs_fetch(t0));
        cache.store(token("a", Some(3600)), t0);
        assert!(!cache.needs_fetch(t0 + Duration::from_secs(3500)));
        assert!(cache.needs_fetch(t0 + Duration::from_secs(3541)));
        assert_eq!(cache.current().map(|(_, generation)| generation), Some(1));
    }

    #[test]
    fn a_refused_token_is_dropped_once() {
        let t0 = Instant::now();
        let mut cache = TokenCache::new(Auth::Fetched);
        cache.store(token("a", None), t0);
        assert!(!cache.refused(1));
        assert!(cache.needs_fetch(t0));
        cache.store(token("b", None), t0);
        // A late refusal of the old token keeps the new one.
        cache.refused(1);
        assert!(!cache.needs_fetch(t0));
    }

    #[test]
    fn fixed_credentials_are_never_fetched() {
        let bearer = TokenCache::new(Auth::Bearer(SecretString::from("s".to_string())));
        assert!(!bearer.needs_fetch(Instant::now()));
        assert!(bearer.current().is_some());
        let mut none = TokenCache::new(Auth::None);
        assert!(none.current().is_none());
        assert!(none.refused(0));
    }
}
