//! push_server settings read from `pushserver.conf`.
//!
//! Keys of the original: `ListenIP` (a `;` list here), `ListenPort`, both required. Its APNs
//! keys `CertPath`, `KeyPath`, `KeyPassword` and `SandBox` are accepted and ignored (one
//! warning each): the push gateway holds the APNs and FCM credentials.
//!
//! Keys of the gateway delivery (all optional):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `PushGatewayUrl` | empty | `http://host[:port]` of a Gorush gateway; empty: pushes are logged, not sent |
//! | `PushTopic` | empty | the iOS bundle id, sent as `topic` of iOS notifications |
//! | `PushTimeoutMs` | 5000 | whole budget of one HTTP request to the gateway |
//! | `PushQueueSize` | 10000 | notifications waiting for the gateway; a full queue refuses |
//! | `PushBatchSize` | 100 | notifications taken into one request (Gorush's `max_notification`) |
//! | `PushMaxAttempts` | 4 | attempts of one request on 5xx and connection errors |
//! | `PushRetryDelayMs` | 500 | wait before the first retry, doubled before each further one |

use std::time::Duration;

use tt_common::{Conf, ConfError};

/// Keys of the original's APNs client, read and ignored.
pub const LEGACY_KEYS: [&str; 4] = ["CertPath", "KeyPath", "KeyPassword", "SandBox"];

/// How and where notifications are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `<PushGatewayUrl>/api/push`, or None: notifications are logged.
    pub push_url: Option<String>,
    pub topic: String,
    pub timeout: Duration,
    pub batch_size: usize,
    pub max_attempts: u32,
    pub retry_delay: Duration,
}

/// Everything push_server takes from its conf file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub listen_ips: Vec<String>,
    pub listen_port: u16,
    pub queue_size: usize,
    pub delivery: Delivery,
    /// The legacy keys present in the file (each deserves a warning).
    pub ignored: Vec<&'static str>,
}

impl Settings {
    /// Reads the settings. Errors name the file and the key.
    pub fn from_conf(conf: &Conf) -> Result<Settings, ConfError> {
        let gateway = conf.get("PushGatewayUrl").unwrap_or("").trim();
        let push_url = if gateway.is_empty() {
            None
        } else {
            Some(push_url(gateway).ok_or_else(|| {
                conf.invalid(
                    "PushGatewayUrl",
                    gateway,
                    "an http://host[:port] URL (https is not supported: run the gateway \
                     on a local http port), or nothing",
                )
            })?)
        };
        Ok(Settings {
            listen_ips: conf.require_list("ListenIP", ';')?,
            listen_port: conf.require_parse("ListenPort")?,
            queue_size: ranged(conf, "PushQueueSize", 10_000, 1, 1_000_000)?,
            delivery: Delivery {
                push_url,
                topic: conf.get("PushTopic").unwrap_or("").trim().to_string(),
                timeout: millis(conf, "PushTimeoutMs", 5_000)?,
                batch_size: ranged(conf, "PushBatchSize", 100, 1, 1_000)?,
                max_attempts: ranged(conf, "PushMaxAttempts", 4, 1, 10)?,
                retry_delay: millis(conf, "PushRetryDelayMs", 500)?,
            },
            ignored: LEGACY_KEYS
                .into_iter()
                .filter(|k| conf.get(k).is_some())
                .collect(),
        })
    }
}

/// `<url>/api/push` for an `http://host[:port][/prefix]` URL; None for another scheme or
/// without a host.
pub fn push_url(gateway: &str) -> Option<String> {
    let uri: ureq::http::Uri = gateway.parse().ok()?;
    let http = uri.scheme_str()?.eq_ignore_ascii_case("http");
    let host = uri.host().is_some_and(|h| !h.is_empty());
    (http && host && uri.query().is_none())
        .then(|| format!("{}/api/push", gateway.trim_end_matches('/')))
}

/// An optional number in `min..=max`.
fn ranged<T>(conf: &Conf, key: &str, default: T, min: T, max: T) -> Result<T, ConfError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let v: T = conf.get_parse(key, default)?;
    if v < min || v > max {
        return Err(conf.invalid(key, &v.to_string(), &format!("a number in {min}..={max}")));
    }
    Ok(v)
}

/// An optional number of milliseconds in 1..=600 000.
fn millis(conf: &Conf, key: &str, default: u64) -> Result<Duration, ConfError> {
    ranged(conf, key, default, 1, 600_000).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, ConfError> {
        Settings::from_conf(&Conf::parse(text, "pushserver.conf"))
    }

    #[test]
    fn reads_the_keys_with_their_defaults() {
        let s = parse("ListenIP=127.0.0.1\nListenPort=8500\nPushGatewayUrl=\n").unwrap();
        assert_eq!(s.listen_ips, vec!["127.0.0.1"]);
        assert_eq!(s.listen_port, 8500);
        assert_eq!(s.queue_size, 10_000);
        assert_eq!(s.delivery.push_url, None);
        assert_eq!(s.delivery.topic, "");
        assert_eq!(s.delivery.timeout, Duration::from_millis(5_000));
        assert_eq!(s.delivery.batch_size, 100);
        assert_eq!(s.delivery.max_attempts, 4);
        assert_eq!(s.delivery.retry_delay, Duration::from_millis(500));
        assert!(s.ignored.is_empty());

        let s = parse(
            "ListenIP=0.0.0.0\nListenPort=1\nPushGatewayUrl=http://127.0.0.1:8088/\n\
             PushTopic=com.example.tt\nPushTimeoutMs=20\nPushQueueSize=3\nPushBatchSize=2\n\
             PushMaxAttempts=1\nPushRetryDelayMs=7\nCertPath=a.pem\nSandBox=1\n",
        )
        .unwrap();
        assert_eq!(
            s.delivery.push_url.as_deref(),
            Some("http://127.0.0.1:8088/api/push")
        );
        assert_eq!(s.delivery.topic, "com.example.tt");
        assert_eq!(s.delivery.timeout, Duration::from_millis(20));
        assert_eq!(s.queue_size, 3);
        assert_eq!(s.delivery.batch_size, 2);
        assert_eq!(s.delivery.max_attempts, 1);
        assert_eq!(s.delivery.retry_delay, Duration::from_millis(7));
        assert_eq!(s.ignored, vec!["CertPath", "SandBox"]);
    }

    #[test]
    fn the_shipped_conf_file_reads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../conf/pushserver.conf");
        let s = Settings::from_conf(&Conf::load(path).unwrap()).unwrap();
        assert_eq!(
            (s.listen_ips.as_slice(), s.listen_port),
            (&["127.0.0.1".to_string()][..], 8500)
        );
        assert_eq!(s.delivery.push_url, None);
        assert!(s.ignored.is_empty());
    }

    #[test]
    fn refuses_bad_values() {
        let base = "ListenIP=127.0.0.1\nListenPort=8500\n";
        for (line, key) in [
            ("PushGatewayUrl=https://gw:443", "PushGatewayUrl"),
            ("PushGatewayUrl=gw:8088", "PushGatewayUrl"),
            ("PushGatewayUrl=http://", "PushGatewayUrl"),
            ("PushQueueSize=0", "PushQueueSize"),
            ("PushBatchSize=1001", "PushBatchSize"),
            ("PushMaxAttempts=0", "PushMaxAttempts"),
            ("PushTimeoutMs=0", "PushTimeoutMs"),
            ("PushRetryDelayMs=x", "PushRetryDelayMs"),
        ] {
            let e = parse(&format!("{base}{line}\n")).unwrap_err();
            assert!(e.to_string().contains(key), "{line}: {e}");
        }
        let e = parse("ListenIP=127.0.0.1\n").unwrap_err();
        assert!(e.to_string().contains("ListenPort"), "{e}");
    }
}
