//! Polling an API's asynchronous job (a Salesforce Bulk 2.0 job, a Zendesk
//! job status) until it is done: exponential waits between probes (backon),
//! bounded in total time, cancellable.

use std::future::Future;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use weft_core::CancellationToken;

use crate::HttpError;

/// How a job is polled: the first wait, the longest wait between probes
/// (waits double from `first` up to `max`), and the total time allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    /// Wait before the second probe.
    pub first: Duration,
    /// Longest wait between two probes.
    pub max: Duration,
    /// Total time the job may take before [`HttpError::JobTimeout`].
    pub limit: Duration,
}

impl Default for PollPolicy {
    /// 250 ms doubling to 5 s, for at most 10 minutes.
    fn default() -> Self {
        PollPolicy {
            first: Duration::from_millis(250),
            max: Duration::from_secs(5),
            limit: Duration::from_secs(600),
        }
    }
}

/// What one probe of a job found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobPoll<T> {
    /// The job is done; its result.
    Done(T),
    /// Still running.
    Pending,
}

/// Probes `job` (named `what` in errors, e.g. `zendesk job 8f3a…`) until it
/// answers [`JobPoll::Done`]: the first probe at once, then after waits
/// growing from `policy.first` to `policy.max`. A probe's error ends the
/// poll with that error (the probe's requests have their own retries);
/// `policy.limit` passed gives [`HttpError::JobTimeout`]; `cancel` fired
/// gives [`HttpError::Cancelled`].
pub async fn poll_job<T, F, Fut>(
    what: &str,
    policy: PollPolicy,
    cancel: &CancellationToken,
    mut job: F,
) -> Result<T, HttpError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<JobPoll<T>, HttpError>>,
{
    let started = Instant::now();
    let mut waits = ExponentialBuilder::default()
        .with_min_delay(policy.first)
        .with_max_delay(policy.max)
        .with_factor(2.0)
        .without_max_times()
        .build();
    let mut probes = 0_u32;
    loop {
        if cancel.is_cancelled() {
            return Err(HttpError::Cancelled {
                what: what.to_string(),
            });
        }
        probes += 1;
        if let JobPoll::Done(result) = job().await? {
            return Ok(result);
        }
        let wait = waits.next().unwrap_or(policy.max);
        if started.elapsed() + wait > policy.limit {
            return Err(HttpError::JobTimeout {
                what: what.to_string(),
                waited_secs: started.elapsed().as_secs(),
                probes,
            });
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                return Err(HttpError::Cancelled { what: what.to_string() });
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn fast(limit_ms: u64) -> PollPolicy {
        PollPolicy {
            first: Duration::from_millis(1),
            max: Duration::from_millis(4),
            limit: Duration::from_millis(limit_ms),
        }
    }

    #[tokio::test]
    async fn probes_until_done_and_returns_the_result() {
        let calls = AtomicU32::new(0);
        let out = poll_job("job 1", fast(5_000), &CancellationToken::new(), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(if n == 4 {
                JobPoll::Done(n * 10)
            } else {
                JobPoll::Pending
            })
        })
        .await;
        assert_eq!(out.ok(), Some(40));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_job_that_never_finishes_times_out_naming_it() {
        let err = poll_job::<(), _, _>(
            "zendesk job abc",
            fast(30),
            &CancellationToken::new(),
            || async { Ok(JobPoll::Pending) },
        )
        .await
        .err();
        match err {
            Some(HttpError::JobTimeout { what, probes, .. }) => {
                assert_eq!(what, "zendesk job abc");
                assert!(probes >= 2, "probed {probes} times");
            }
            other => panic!("expected a job timeout, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_probe_error_ends_the_poll_and_cancel_stops_it() {
        let err = poll_job::<(), _, _>("j", fast(5_000), &CancellationToken::new(), || async {
            Err(HttpError::Cancelled {
                what: "probe".into(),
            })
        })
        .await
        .err();
        assert!(matches!(err, Some(HttpError::Cancelled { what }) if what == "probe"));
        let cancel = CancellationToken::new();
        cancel.cancel();
        let err = poll_job::<(), _, _>("j2", fast(5_000), &cancel, || async {
            Ok(JobPoll::Pending)
        })
        .await
        .err();
        assert!(matches!(err, Some(HttpError::Cancelled { what }) if what == "j2"));
    }
}
