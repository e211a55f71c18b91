//! The lifecycle Firehose delivery streams and Kinesis data streams share: CREATING for the create delay after
//! creation, then ACTIVE; DELETING for the delete delay after deletion, then gone. Derived from the persisted
//! timestamps each time it is asked, so a restart keeps every stream where it was.

use firehose_kit_domain::types::StreamStatus;

/// Where a stream is in its lifecycle: a status AWS reports, or gone (its DELETING period is over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    Is(StreamStatus),
    Gone,
}

impl Lifecycle {
    /// The lifecycle at `now_ms` of a stream created at `created_ms` and deleted at `deleting_since_ms`.
    pub fn at(
        created_ms: i64,
        deleting_since_ms: Option<i64>,
        now_ms: i64,
        create_delay_ms: i64,
        delete_delay_ms: i64,
    ) -> Lifecycle {
        match deleting_since_ms {
            Some(since) if now_ms >= since + delete_delay_ms => Lifecycle::Gone,
            Some(_) => Lifecycle::Is(StreamStatus::Deleting),
            None if now_ms < created_ms + create_delay_ms => Lifecycle::Is(StreamStatus::Creating),
            None => Lifecycle::Is(StreamStatus::Active),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creating_then_active_then_deleting_then_gone() {
        assert_eq!(Lifecycle::at(0, None, 99, 100, 50), Lifecycle::Is(StreamStatus::Creating));
        assert_eq!(Lifecycle::at(0, None, 100, 100, 50), Lifecycle::Is(StreamStatus::Active));
        assert_eq!(Lifecycle::at(0, Some(200), 249, 100, 50), Lifecycle::Is(StreamStatus::Deleting));
        assert_eq!(Lifecycle::at(0, Some(200), 250, 100, 50), Lifecycle::Gone);
    }
}
