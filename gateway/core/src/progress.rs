//! Progress of a long call, for clients that asked for it (MCP's `progressToken`). The front door builds a
//! [`Reporter`] around its own way of telling the client; the pipeline runs the call with it as a
//! task-local, so an operation reports with [`report`] and needs no parameter for it. Updates are sent at
//! most one per [`MIN_INTERVAL`] (the one that completes the work always goes) and only while the progress
//! grows, as MCP requires.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One step of a call's progress.
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: String,
}

/// Where a call's updates go (the MCP front door sends `notifications/progress`).
pub type Sink = Arc<dyn Fn(Update) + Send + Sync>;

/// The shortest time between two updates of one call.
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// A call's progress reporter.
#[derive(Clone)]
pub struct Reporter {
    sink: Sink,
    last: Arc<Mutex<Option<(Instant, f64)>>>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").finish_non_exhaustive()
    }
}

tokio::task_local! {
    static REPORTER: Reporter;
}

impl Reporter {
    pub fn new(sink: Sink) -> Reporter {
        Reporter {
            sink,
            last: Arc::new(Mutex::new(None)),
        }
    }

    fn send(&self, update: Update) {
        let now = Instant::now();
        let complete = update.total.is_some_and(|t| update.progress >= t);
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, progress)) = *last
                && (update.progress <= progress || (!complete && now - at < MIN_INTERVAL))
            {
                return;
            }
            *last = Some((now, update.progress));
        }
        (self.sink)(update);
    }
}

/// Runs `call` with `reporter` (if the client asked for progress) as its reporter.
pub async fn scope<F: Future>(reporter: Option<Reporter>, call: F) -> F::Output {
    match reporter {
        Some(reporter) => REPORTER.scope(reporter, call).await,
        None => call.await,
    }
}

/// Reports the current call's progress, when its client asked for it: `progress` of `total` (if known).
pub fn report(progress: f64, total: Option<f64>, message: impl Into<String>) {
    let _ = REPORTER.try_with(|reporter| {
        reporter.send(Update {
            progress,
            total,
            message: message.into(),
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn updates_are_spaced_growing_and_the_last_always_goes() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink: Sink = {
            let seen = Arc::clone(&seen);
            Arc::new(move |u: Update| seen.lock().unwrap().push(u.progress))
        };
        scope(Some(Reporter::new(sink)), async {
            report(1.0, Some(4.0), "one");
            report(2.0, Some(4.0), "two, too soon");
            report(1.5, Some(4.0), "going back");
            tokio::time::sleep(MIN_INTERVAL).await;
            report(3.0, Some(4.0), "three");
            report(4.0, Some(4.0), "done, soon but complete");
        })
        .await;
        assert_eq!(*seen.lock().unwrap(), [1.0, 3.0, 4.0]);
        // Outside a call that asked for progress, reporting does nothing.
        report(1.0, None, "nobody listens");
    }
}
