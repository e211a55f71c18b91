//! Failpoints at the emulator's I/O boundaries, compiled only for tests.
//!
//! Code at a boundary calls [`check`] with the point's name and what it is about (a path, a function's ARN); in a
//! build that is not a test, `check` is an empty inline function. A test arms a point for a scope (a substring of
//! that subject, so tests running side by side never trip each other's points) to fail with an I/O error or to
//! panic on chosen hits, and reads back how often it fired. The sweep in `firehose::sweep` arms every point for
//! every kind of stream and checks that no acknowledged record is lost or doubled.

/// Appending frames to a journal (a record's acknowledgement, or a stage's output).
pub const JOURNAL_APPEND: &str = "journal.append";
/// Syncing a journal after an append (its frames are written; the sync, or the check for it, fails).
pub const JOURNAL_SYNC: &str = "journal.sync";
/// Reading a sealed range back from a journal.
pub const JOURNAL_READ: &str = "journal.read";
/// Writing an object to the store (a delivery, or an error output).
pub const OBJECT_PUT: &str = "object.put";
/// Writing a lane's progress (its intent or its delivered offset) or a partition set's state.
pub const PROGRESS_WRITE: &str = "progress.write";
/// Journaling a Lambda function's answer before anything is delivered from it.
pub const ANSWER_WRITE: &str = "answer.write";
/// Invoking a Lambda function for a transformation.
pub const LAMBDA_INVOKE: &str = "lambda.invoke";
/// Appending records to a Kinesis shard.
pub const KINESIS_APPEND: &str = "kinesis.append";
/// Reading a Kinesis shard for a Firehose source.
pub const KINESIS_READ: &str = "kinesis.read";
/// Reading a Glue table for record format conversion.
pub const GLUE_READ: &str = "glue.read";
/// Removing a directory (an idle partition, a deleted stream's journal).
pub const DIR_REMOVE: &str = "dir.remove";

/// Every failpoint, for the sweep.
#[cfg(test)]
pub const POINTS: &[&str] = &[
    JOURNAL_APPEND,
    JOURNAL_SYNC,
    JOURNAL_READ,
    OBJECT_PUT,
    PROGRESS_WRITE,
    ANSWER_WRITE,
    LAMBDA_INVOKE,
    KINESIS_APPEND,
    KINESIS_READ,
    GLUE_READ,
    DIR_REMOVE,
];

/// Fails if a test armed `point` for a scope `subject` contains (never in a build that is not a test).
#[cfg(not(test))]
#[inline(always)]
pub fn check(_point: &'static str, _subject: &dyn AsRef<std::ffi::OsStr>) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
pub use armed::{Action, arm, check};

#[cfg(test)]
mod armed {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex, PoisonError};

    /// What an armed point does when it fires.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Action {
        /// An I/O error, as a full disk or a failed sync would give.
        Error,
        /// A panic, as a bug would.
        Panic,
    }

    /// One armed point: its scope, its action and the hits (1-based) on which it fires.
    #[derive(Debug)]
    pub struct Armed {
        point: &'static str,
        scope: String,
        action: Action,
        hits: Vec<u32>,
        seen: AtomicU32,
        fired: AtomicU32,
    }

    impl Armed {
        /// How often the point fired.
        pub fn fired(&self) -> u32 {
            self.fired.load(Ordering::SeqCst)
        }

        /// How often the point was reached in its scope.
        pub fn seen(&self) -> u32 {
            self.seen.load(Ordering::SeqCst)
        }
    }

    static ARMED: Mutex<Vec<Arc<Armed>>> = Mutex::new(Vec::new());

    /// Disarms its point when dropped.
    pub struct Guard(pub Arc<Armed>);

    impl Drop for Guard {
        fn drop(&mut self) {
            ARMED.lock().unwrap_or_else(PoisonError::into_inner).retain(|a| !Arc::ptr_eq(a, &self.0));
        }
    }

    /// Arms `point` for subjects containing `scope`: on the hits listed (1-based), it fails with `action`.
    pub fn arm(point: &'static str, scope: &str, action: Action, hits: &[u32]) -> Guard {
        assert!(super::POINTS.contains(&point), "unknown failpoint {point}");
        let armed = Arc::new(Armed {
            point,
            scope: scope.to_string(),
            action,
            hits: hits.to_vec(),
            seen: AtomicU32::new(0),
            fired: AtomicU32::new(0),
        });
        ARMED.lock().unwrap_or_else(PoisonError::into_inner).push(armed.clone());
        Guard(armed)
    }

    /// Fails if `point` is armed for a scope `subject` contains and this hit is one it fires on.
    pub fn check(point: &'static str, subject: &dyn AsRef<std::ffi::OsStr>) -> std::io::Result<()> {
        let subject = subject.as_ref().to_string_lossy();
        let armed: Vec<Arc<Armed>> = ARMED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|a| a.point == point && subject.contains(a.scope.as_str()))
            .cloned()
            .collect();
        for a in armed {
            let hit = a.seen.fetch_add(1, Ordering::SeqCst) + 1;
            if a.hits.contains(&hit) {
                a.fired.fetch_add(1, Ordering::SeqCst);
                match a.action {
                    Action::Error => return Err(std::io::Error::other(format!("injected failure at {point}"))),
                    Action::Panic => panic!("injected panic at {point} ({subject})"),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_armed_point_fires_on_its_hits_in_its_scope_only() {
        let guard = arm(OBJECT_PUT, "/scope-a/", Action::Error, &[2, 3]);
        assert!(check(OBJECT_PUT, &"/x/scope-b/o").is_ok(), "another scope");
        assert!(check(JOURNAL_APPEND, &"/x/scope-a/o").is_ok(), "another point");
        let results: Vec<bool> = (0..4).map(|_| check(OBJECT_PUT, &"/x/scope-a/o").is_ok()).collect();
        assert_eq!(results, [true, false, false, true]);
        assert_eq!((guard.0.seen(), guard.0.fired()), (4, 2));
        drop(guard);
        assert!(check(OBJECT_PUT, &"/x/scope-a/o").is_ok(), "disarmed");
        let _panics = arm(DIR_REMOVE, "/scope-c/", Action::Panic, &[1]);
        assert!(std::panic::catch_unwind(|| check(DIR_REMOVE, &"/scope-c/d")).is_err());
    }
}
