//! Where the client and the emulator deliberately differ, in one place.
//!
//! The client (setup, send, verify, status) accepts everything AWS accepts: it validates with the rules in the
//! other modules of [`crate`] and nothing stricter. The emulator refuses, with
//! `InvalidArgumentException` and a message that names it, what it does not model, rather than pretending to
//! deliver it: [`refusal`] is that list. docs/emulator.md shows the same list to users.

/// What the emulator does not model, and says so when asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmodelled {
    /// A stream fed by MSK or a database instead of Direct Put or Kinesis Data Streams.
    StreamType(String),
    /// A destination other than S3 (Redshift, OpenSearch, Splunk, HTTP endpoint, ...), by its member name.
    Destination(String),
    /// Partition keys from a Lambda's answer (`!{partitionKeyFromLambda:..}`): the function runs, but the
    /// `metadata.partitionKeys` it answers are not carried to the destination's partitions.
    LambdaPartitioning,
    /// UpdateDestination removing a stream's Lambda processor, or adding one to a partitioned stream: the
    /// emulator's transformation stages are set up when the processor first appears and kept while the stream
    /// lives.
    LambdaProcessorChange(&'static str),
    /// A processor the emulator does not apply (Decompression and CloudWatchLogProcessing, which serve
    /// CloudWatch Logs subscriptions), by its type.
    Processor(String),
    /// A `!{timestamp:…}` pattern letter Java accepts that the emulator does not format (see
    /// [`crate::prefix::unmodelled_letter`]).
    TimestampLetter { letter: char, pattern: String },
    /// A member of a destination the emulator does not apply, by its path (`S3BackupConfiguration`, SSE-KMS).
    Member(String),
    /// A parameter given to a processor type that does not take it (it would have no effect).
    ProcessorParameter { processor: String, parameter: String },
}

impl Unmodelled {
    pub fn message(&self) -> String {
        match self {
            Unmodelled::StreamType(t) => {
                format!(
                    "DeliveryStreamType {t} is not modelled by the firehose-kit emulator; only DirectPut and KinesisStreamAsSource are"
                )
            }
            Unmodelled::Destination(d) => {
                format!("{d} is not modelled by the firehose-kit emulator; use ExtendedS3DestinationConfiguration")
            }
            Unmodelled::LambdaProcessorChange(what) => format!(
                "{what} with UpdateDestination is not modelled by the firehose-kit emulator: delete the stream and create it with the processing you want"
            ),
            Unmodelled::Member(member) => format!(
                "{member} is not modelled by the firehose-kit emulator: it would be stored and not applied, so it is refused"
            ),
            Unmodelled::TimestampLetter { letter, pattern } => format!(
                "The pattern letter {letter} in !{{timestamp:{pattern}}} is not modelled by the firehose-kit emulator (it formats G u y D M L d Q q E a h K k H m s S n N A X x Z O z, optional sections and quoted text); use those, or quote the letter to keep it as text"
            ),
            Unmodelled::Processor(kind) => format!(
                "The {kind} processor is not modelled by the firehose-kit emulator: it serves CloudWatch Logs subscriptions, which the emulator does not deliver to Firehose yet, and records would otherwise be delivered as they came"
            ),
            Unmodelled::ProcessorParameter { processor, parameter } => {
                let takes = crate::partitioning::parameters_of(processor);
                let takes = if takes.is_empty() { "no parameters".to_string() } else { takes.join(", ") };
                format!(
                    "ParameterName {parameter} is not a parameter of the {processor} processor (it takes {takes}): the firehose-kit emulator refuses a setting it would not apply"
                )
            }
            Unmodelled::LambdaPartitioning => {
                "Partition keys from a Lambda (partitionKeyFromLambda) are not modelled by the firehose-kit emulator: it runs the function but does not partition by the metadata.partitionKeys it answers; use partitionKeyFromQuery with a MetadataExtraction processor".into()
            }
        }
    }
}

/// What the emulator needs to know of a create or update request to decide whether it can model it.
#[derive(Debug, Clone, Default)]
pub struct Requested<'a> {
    pub stream_type: Option<&'a str>,
    /// Member names of destination configurations other than (Extended)S3.
    pub other_destinations: Vec<&'a str>,
    /// The prefix takes partition keys from a Lambda.
    pub lambda_partition_keys: bool,
    /// An update takes the stream's Lambda processor away.
    pub lambda_removed: bool,
    /// An update adds a Lambda processor to a partitioned stream.
    pub lambda_added_to_partitioned: bool,
    /// The processors, as (type, parameter names) of a known type (AWS's model refuses unknown ones first).
    pub processors: Vec<(&'a str, Vec<&'a str>)>,
}

/// The first thing in `r` that the emulator does not model, if any.
pub fn refusal(r: &Requested<'_>) -> Option<Unmodelled> {
    if let Some(t) = r.stream_type.filter(|t| !matches!(*t, "DirectPut" | "KinesisStreamAsSource")) {
        return Some(Unmodelled::StreamType(t.to_string()));
    }
    if let Some(d) = r.other_destinations.first() {
        return Some(Unmodelled::Destination(d.to_string()));
    }
    if r.lambda_partition_keys {
        return Some(Unmodelled::LambdaPartitioning);
    }
    for (kind, params) in &r.processors {
        if matches!(*kind, "Decompression" | "CloudWatchLogProcessing") {
            return Some(Unmodelled::Processor(kind.to_string()));
        }
        let takes = crate::partitioning::parameters_of(kind);
        if let Some(p) = params.iter().find(|p| !takes.contains(p)) {
            return Some(Unmodelled::ProcessorParameter { processor: kind.to_string(), parameter: p.to_string() });
        }
    }
    if r.lambda_removed {
        return Some(Unmodelled::LambdaProcessorChange("Removing or disabling a stream's Lambda processor"));
    }
    if r.lambda_added_to_partitioned {
        return Some(Unmodelled::LambdaProcessorChange("Adding a Lambda processor to a partitioned stream"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_not_modelled_is_refused() {
        assert_eq!(refusal(&Requested::default()), None);
        assert_eq!(refusal(&Requested { stream_type: Some("KinesisStreamAsSource"), ..Default::default() }), None);
        assert_eq!(
            refusal(&Requested { stream_type: Some("MSKAsSource"), ..Default::default() }),
            Some(Unmodelled::StreamType("MSKAsSource".into()))
        );
        assert_eq!(
            refusal(&Requested { lambda_partition_keys: true, ..Default::default() }),
            Some(Unmodelled::LambdaPartitioning)
        );
        let decompress =
            Requested { processors: vec![("Decompression", vec!["CompressionFormat"])], ..Default::default() };
        assert_eq!(refusal(&decompress), Some(Unmodelled::Processor("Decompression".into())));
        let misplaced =
            Requested { processors: vec![("AppendDelimiterToRecord", vec!["Delimiter"])], ..Default::default() };
        let refused = refusal(&misplaced).unwrap();
        assert!(refused.message().starts_with("ParameterName Delimiter is not a parameter of the AppendDelimiterToRecord processor (it takes no parameters)"), "{}", refused.message());
        let fine =
            Requested { processors: vec![("Lambda", vec!["LambdaArn", "NumberOfRetries"])], ..Default::default() };
        assert_eq!(refusal(&fine), None);
    }
}
