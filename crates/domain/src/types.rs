//! Firehose's enumerations as types, so both sides compare variants instead of strings. Each parses the
//! service's spelling and keeps an unknown value as [`Other`](StreamStatus::Other)-style text, because a client
//! must understand everything AWS may answer (new values appear over time).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this version does not know, as the service spelled it.
            Other(String),
        }

        impl $name {
            /// Every known value, in the service model's order.
            pub const KNOWN: &'static [&'static str] = &[$($text),+];

            /// The service's spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s,
                }
            }

            /// Parses the service's spelling (exactly, as the wire has it).
            pub fn parse(s: &str) -> Self {
                match s {
                    $($text => $name::$variant,)+
                    other => $name::Other(other.to_string()),
                }
            }

            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name::parse(&String::deserialize(d)?))
            }
        }
    };
}

wire_enum!(
    /// `DeliveryStreamStatus`.
    StreamStatus {
        Creating => "CREATING",
        CreatingFailed => "CREATING_FAILED",
        Deleting => "DELETING",
        DeletingFailed => "DELETING_FAILED",
        Active => "ACTIVE",
    }
);

impl StreamStatus {
    /// States a stream never leaves by waiting (setup must stop, not poll on).
    pub fn is_terminal_failure(&self) -> bool {
        matches!(self, StreamStatus::CreatingFailed | StreamStatus::Deleting | StreamStatus::DeletingFailed)
    }
}

wire_enum!(
    /// `CompressionFormat`.
    Compression {
        Uncompressed => "UNCOMPRESSED",
        Gzip => "GZIP",
        Zip => "ZIP",
        Snappy => "Snappy",
        HadoopSnappy => "HADOOP_SNAPPY",
    }
);

impl Compression {
    /// The object-name extension Firehose uses when `FileExtension` is not set. HADOOP_SNAPPY objects are named
    /// `.snappy` by the service (its documentation's table says `.hsnappy`; the service is followed).
    pub fn default_extension(&self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::Zip => ".zip",
            Compression::Snappy | Compression::HadoopSnappy => ".snappy",
            Compression::Uncompressed | Compression::Other(_) => "",
        }
    }
}

wire_enum!(
    /// `ProcessorType` of a `ProcessingConfiguration`.
    ProcessorType {
        RecordDeAggregation => "RecordDeAggregation",
        Decompression => "Decompression",
        CloudWatchLogProcessing => "CloudWatchLogProcessing",
        Lambda => "Lambda",
        MetadataExtraction => "MetadataExtraction",
        AppendDelimiterToRecord => "AppendDelimiterToRecord",
    }
);

wire_enum!(
    /// `DeliveryStreamEncryptionStatus`.
    EncryptionStatus {
        Enabled => "ENABLED",
        Enabling => "ENABLING",
        EnablingFailed => "ENABLING_FAILED",
        Disabled => "DISABLED",
        Disabling => "DISABLING",
        DisablingFailed => "DISABLING_FAILED",
    }
);

/// Whether a failed PutRecordBatch entry was throttled (the stream's throughput quota), as opposed to an
/// internal failure: Firehose reports throttling per entry as `ServiceUnavailableException`, Kinesis as
/// `ProvisionedThroughputExceededException` (a shard over its write limits).
pub fn entry_is_throttled(error_code: &str) -> bool {
    matches!(error_code, "ServiceUnavailableException" | "ProvisionedThroughputExceededException")
}

/// The object extension of a destination: `FileExtension` when set, else the compression's default. An empty
/// `FileExtension` counts as unset: Terraform sends `""` for "not configured".
pub fn object_extension(compression: &Compression, file_extension: Option<&str>) -> String {
    match file_extension {
        Some(ext) if !ext.is_empty() => ext.to_string(),
        _ => compression.default_extension().to_string(),
    }
}

/// The extension of a stream's objects: `FileExtension`, else `.parquet` when it converts record formats (the
/// destination is then UNCOMPRESSED), else the compression's.
pub fn delivered_extension(compression: &Compression, file_extension: Option<&str>, converts: bool) -> String {
    match file_extension.filter(|e| !e.is_empty()) {
        None if converts => ".parquet".to_string(),
        ext => object_extension(compression, ext),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_unknown_values_are_kept() {
        for s in StreamStatus::KNOWN.iter().chain(Compression::KNOWN).chain(ProcessorType::KNOWN) {
            let text = match StreamStatus::parse(s) {
                StreamStatus::Other(_) => match Compression::parse(s) {
                    Compression::Other(_) => ProcessorType::parse(s).as_str().to_string(),
                    c => c.as_str().to_string(),
                },
                st => st.as_str().to_string(),
            };
            assert_eq!(&text, s);
        }
        let later = StreamStatus::parse("SUSPENDED");
        assert!(!later.is_known());
        assert_eq!(later.as_str(), "SUSPENDED");
        assert_eq!(serde_json::to_string(&Compression::HadoopSnappy).unwrap(), r#""HADOOP_SNAPPY""#);
        assert_eq!(serde_json::from_str::<Compression>(r#""GZIP""#).unwrap(), Compression::Gzip);
    }

    #[test]
    fn extensions_follow_compression_unless_set() {
        assert_eq!(object_extension(&Compression::Gzip, None), ".gz");
        assert_eq!(object_extension(&Compression::Uncompressed, None), "");
        assert_eq!(object_extension(&Compression::Gzip, Some(".log.gz")), ".log.gz");
        assert_eq!(object_extension(&Compression::Gzip, Some("")), ".gz");
        assert!(StreamStatus::CreatingFailed.is_terminal_failure() && !StreamStatus::Active.is_terminal_failure());
    }
}
