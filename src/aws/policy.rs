//! The documents and tags setup applies: the role's trust policy, its S3 delivery policy, and the bucket policy.
//! `templates/*.json` are these documents with `${AccountId}`, `${BucketName}` and `${Partition}` placeholders;
//! a test renders them here and compares, so code and templates cannot drift.

use serde_json::{Value, json};

/// Tag marking every resource firehose-kit created; teardown touches only resources carrying it.
pub const MANAGED_TAG: &str = "firehose-kit:managed";
/// Tag naming the stream a resource belongs to.
pub const STREAM_TAG: &str = "firehose-kit:stream";
/// Name of the role's inline policy.
pub const DELIVERY_POLICY_NAME: &str = "s3-delivery";

/// The six S3 actions AWS documents for Firehose delivery to S3.
pub const DELIVERY_ACTIONS: [&str; 6] = [
    "s3:AbortMultipartUpload",
    "s3:GetBucketLocation",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:PutObject",
];

/// The tags of every resource setup creates for `stream`.
pub fn tags(stream: &str) -> Vec<(String, String)> {
    vec![(MANAGED_TAG.to_string(), "true".to_string()), (STREAM_TAG.to_string(), stream.to_string())]
}

/// Whether a resource's tags mark it as made by firehose-kit.
pub fn is_managed(tags: &[(String, String)]) -> bool {
    tags.iter().any(|(k, v)| k == MANAGED_TAG && v == "true")
}

/// A shared resource's tags after setup: every tag it has, `firehose-kit:managed=true`, and a
/// `firehose-kit:stream` tag only when it has none (the first stream's name stays; PutBucketTagging replaces the
/// whole set, so nobody else's tags are dropped either).
pub fn merged_tags(existing: &[(String, String)], ours: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = existing.iter().filter(|(k, _)| k != MANAGED_TAG).cloned().collect();
    out.insert(0, (MANAGED_TAG.to_string(), "true".to_string()));
    for (k, v) in ours {
        if !out.iter().any(|(have, _)| have == k) {
            out.push((k.clone(), v.clone()));
        }
    }
    out
}

/// Trust policy: only Firehose, and only on behalf of this account (`sts:ExternalId` = account id).
pub fn trust_policy(account_id: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "FirehoseAssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "firehose.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": account_id}}
        }]
    })
}

/// The role's permissions: the six documented actions on this bucket and its objects only, and, when error
/// logging is on, `logs:PutLogEvents` on that one log stream (`error_log_stream_arn`).
pub fn delivery_policy(partition: &str, bucket: &str, error_log_stream_arn: Option<&str>) -> Value {
    let mut statements = vec![json!({
        "Sid": "FirehoseS3Delivery",
        "Effect": "Allow",
        "Action": DELIVERY_ACTIONS,
        "Resource": [format!("arn:{partition}:s3:::{bucket}"), format!("arn:{partition}:s3:::{bucket}/*")]
    })];
    if let Some(arn) = error_log_stream_arn {
        statements.push(json!({
            "Sid": "FirehoseErrorLogging",
            "Effect": "Allow",
            "Action": "logs:PutLogEvents",
            "Resource": arn
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The delivery role's inline policy that lets Firehose invoke the transformation function.
pub const TRANSFORM_POLICY_NAME: &str = "firehose-kit-invoke-transform";

/// The delivery role's inline policy that lets Firehose read a chained pipeline's data stream.
pub const SOURCE_POLICY_NAME: &str = "firehose-kit-read-source";

/// Exactly what Firehose needs to read its source data stream (DescribeStream, GetShardIterator, GetRecords,
/// ListShards), on that stream only.
pub fn source_policy(stream_arn: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "FirehoseReadSource",
        "Effect": "Allow",
        "Action": firehose_kit_domain::kinesis::SOURCE_READ_ACTIONS,
        "Resource": stream_arn
    }]})
}

/// The delivery role's inline policy that lets Firehose read the Glue table a converting stream's Parquet is
/// typed by.
pub const SCHEMA_POLICY_NAME: &str = "firehose-kit-read-schema";

/// Exactly what record format conversion needs (`glue:GetTable`, `GetTableVersion`, `GetTableVersions`), on
/// that table only: Glue checks the catalog, the database and the table, so all three are named (in lower case,
/// as Glue names them).
pub fn schema_policy(partition: &str, region: &str, account_id: &str, database: &str, table: &str) -> Value {
    // Glue folds names to lower case, and its ARNs name them so.
    let (database, table) = (database.to_lowercase(), table.to_lowercase());
    let arn = |what: &str| format!("arn:{partition}:glue:{region}:{account_id}:{what}");
    json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "FirehoseReadSchema",
        "Effect": "Allow",
        "Action": ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
        "Resource": [arn("catalog"), arn(&format!("database/{database}")), arn(&format!("table/{database}/{table}"))]
    }]})
}

/// Exactly what Firehose needs of the transformation function: `lambda:InvokeFunction` and
/// `lambda:GetFunctionConfiguration`, on the function and its versions (Firehose invokes the qualified ARN,
/// `:$LATEST` when none is given).
pub fn transform_policy(function_arn: &str) -> Value {
    let unqualified = function_arn.splitn(8, ':').take(7).collect::<Vec<_>>().join(":");
    json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "FirehoseTransform",
        "Effect": "Allow",
        "Action": ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"],
        "Resource": [unqualified.clone(), format!("{unqualified}:*")]
    }]})
}

/// What differs between the delivery policy a role has (`current`, absent if missing) and the one setup writes:
/// the actions and resources it would restore or remove, for setup's output when it repairs drift.
pub fn policy_drift(current: Option<&str>, wanted: &Value) -> Vec<String> {
    let Some(current) = current else {
        return vec![format!("inline policy {DELIVERY_POLICY_NAME} is missing: restore it")];
    };
    let Ok(current) = serde_json::from_str::<Value>(current) else {
        return vec![format!("inline policy {DELIVERY_POLICY_NAME} is not valid JSON: replace it")];
    };
    let grants = |doc: &Value| -> Vec<(String, String)> {
        let list = match &doc["Statement"] {
            Value::Array(list) => list.clone(),
            single @ Value::Object(_) => vec![single.clone()],
            _ => Vec::new(),
        };
        let strings = |v: &Value| match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(l) => l.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        let mut out = Vec::new();
        for st in list.iter().filter(|st| st["Effect"] == "Allow") {
            for action in strings(&st["Action"]) {
                for resource in strings(&st["Resource"]) {
                    out.push((action.clone(), resource));
                }
            }
        }
        out
    };
    let (have, want) = (grants(&current), grants(wanted));
    // One line per verb and action, its resources joined: "restore s3:PutObject on A and B".
    let mut out: Vec<String> = Vec::new();
    for (verb, from, against) in [("restore", &want, &have), ("remove", &have, &want)] {
        let mut by_action: Vec<(&str, Vec<&str>)> = Vec::new();
        for (a, r) in from.iter().filter(|g| !against.contains(g)) {
            match by_action.iter_mut().find(|(x, _)| x == a) {
                Some((_, rs)) => rs.push(r),
                None => by_action.push((a, vec![r])),
            }
        }
        out.extend(by_action.into_iter().map(|(a, rs)| format!("{verb} {a} on {}", rs.join(" and "))));
    }
    let denies = current["Statement"].as_array().is_some_and(|l| l.iter().any(|st| st["Effect"] == "Deny"));
    if denies {
        out.push("remove Deny statements".into());
    }
    if out.is_empty() {
        out.push(format!("rewrite inline policy {DELIVERY_POLICY_NAME}"));
    }
    out
}

/// Bucket policy: deny every request that does not use TLS.
pub fn bucket_policy(partition: &str, bucket: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:{partition}:s3:::{bucket}"), format!("arn:{partition}:s3:::{bucket}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }]
    })
}

/// Whether two policy documents say the same thing (JSON equality, so whitespace and key order do not matter).
pub fn same_document(a: &str, b: &Value) -> bool {
    serde_json::from_str::<Value>(a).is_ok_and(|parsed| &parsed == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");

    fn template(name: &str) -> Value {
        let text = std::fs::read_to_string(format!("{TEMPLATES}/{name}")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn trust_policy_allows_only_firehose_for_this_account() {
        let p = trust_policy("123456789012");
        let st = &p["Statement"][0];
        assert_eq!(p["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(st["Effect"], "Allow");
        assert_eq!(st["Principal"], json!({"Service": "firehose.amazonaws.com"}));
        assert_eq!(st["Action"], "sts:AssumeRole");
        assert_eq!(st["Condition"], json!({"StringEquals": {"sts:ExternalId": "123456789012"}}));
    }

    #[test]
    fn delivery_policy_has_exactly_six_actions_on_this_bucket_only() {
        let p = delivery_policy("aws", "my-bucket", None);
        let st = &p["Statement"][0];
        assert_eq!(p["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(st["Effect"], "Allow");
        let actions: Vec<&str> = st["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        assert_eq!(actions, DELIVERY_ACTIONS);
        assert!(actions.iter().all(|a| !a.contains('*')), "no wildcard actions");
        assert_eq!(st["Resource"], json!(["arn:aws:s3:::my-bucket", "arn:aws:s3:::my-bucket/*"]));
        let arn = "arn:aws:logs:us-east-2:1:log-group:/aws/kinesisfirehose/S:log-stream:DestinationDelivery";
        let logged = delivery_policy("aws", "my-bucket", Some(arn));
        assert_eq!(logged["Statement"][1]["Action"], "logs:PutLogEvents");
        assert_eq!(logged["Statement"][1]["Resource"], arn, "that one log stream, not the group");
    }

    #[test]
    fn drift_names_what_is_restored() {
        let wanted = delivery_policy("aws", "b", None);
        let mut stripped = wanted.clone();
        let kept: Vec<&str> = DELIVERY_ACTIONS.iter().copied().filter(|a| *a != "s3:PutObject").collect();
        stripped["Statement"][0]["Action"] = json!(kept);
        let drift = policy_drift(Some(&stripped.to_string()), &wanted);
        assert_eq!(drift, vec!["restore s3:PutObject on arn:aws:s3:::b and arn:aws:s3:::b/*"]);
        assert_eq!(policy_drift(None, &wanted), vec!["inline policy s3-delivery is missing: restore it"]);
    }

    #[test]
    fn bucket_policy_denies_plain_http() {
        let p = bucket_policy("aws", "b");
        let st = &p["Statement"][0];
        assert_eq!(st["Effect"], "Deny");
        assert_eq!(st["Principal"], "*");
        assert_eq!(st["Action"], "s3:*");
        assert_eq!(st["Condition"], json!({"Bool": {"aws:SecureTransport": "false"}}));
        assert_eq!(st["Resource"], json!(["arn:aws:s3:::b", "arn:aws:s3:::b/*"]));
    }

    #[test]
    fn the_schema_grant_names_the_catalog_database_and_table_only() {
        let p = schema_policy("aws", "us-east-2", "123", "firehose_kit", "apachelogs");
        let st = &p["Statement"][0];
        assert_eq!(st["Action"], json!(["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"]));
        assert_eq!(
            st["Resource"],
            json!([
                "arn:aws:glue:us-east-2:123:catalog",
                "arn:aws:glue:us-east-2:123:database/firehose_kit",
                "arn:aws:glue:us-east-2:123:table/firehose_kit/apachelogs"
            ])
        );
        // The emulator evaluates exactly this grant when it reads the table.
        let arn = "arn:aws:iam::123:role/r";
        let ctx = firehose_kit_domain::access::delivery_context(arn, "123");
        let identity = [firehose_kit_domain::access::Policy::parse(&p.to_string()).unwrap()];
        let req = firehose_kit_domain::access::Request {
            action: "glue:GetTable",
            resource: "arn:aws:glue:us-east-2:123:table/firehose_kit/apachelogs",
            principal: arn,
            context: &ctx,
        };
        assert!(firehose_kit_domain::access::evaluate(&identity, None, &req).allowed());
    }

    #[test]
    fn templates_match_the_rendered_documents() {
        assert_eq!(template("trust-policy.json"), trust_policy("${AccountId}"));
        let log_stream = "arn:${Partition}:logs:${Region}:${AccountId}:log-group:/aws/kinesisfirehose/${StreamName}:log-stream:DestinationDelivery";
        assert_eq!(
            template("delivery-policy.json"),
            delivery_policy("${Partition}", "${BucketName}", Some(log_stream))
        );
        assert_eq!(template("bucket-policy.json"), bucket_policy("${Partition}", "${BucketName}"));
    }

    #[test]
    fn the_cloudformation_stack_says_what_setup_does() {
        let cfn = std::fs::read_to_string(format!("{TEMPLATES}/cloudformation.yaml")).unwrap();
        for action in DELIVERY_ACTIONS {
            assert_eq!(cfn.matches(&format!("- {action}\n")).count(), 1, "{action}");
        }
        for sid in ["FirehoseAssumeRole", "FirehoseS3Delivery", "FirehoseErrorLogging", "DenyInsecureTransport"] {
            assert!(cfn.contains(&format!("Sid: {sid}")), "{sid}");
        }
        for text in [
            "Service: firehose.amazonaws.com",
            "sts:ExternalId: !Ref AWS::AccountId",
            "aws:SecureTransport: \"false\"",
            "ObjectOwnership: BucketOwnerEnforced",
            "SSEAlgorithm: AES256",
            "PolicyName: s3-delivery",
            "RoleName: !Sub \"firehose-kit-${StreamName}-delivery\"",
            "BucketName: !Sub \"firehose-kit-${AWS::AccountId}-${AWS::Region}\"",
            "DeliveryStreamType: !If [KinesisSource, KinesisStreamAsSource, DirectPut]",
            &format!("PolicyName: {SOURCE_POLICY_NAME}"),
            "Sid: FirehoseReadSource",
            "Resource: !GetAtt SourceStream.Arn",
            "KinesisStreamARN: !GetAtt SourceStream.Arn",
            "LogGroupName: !Sub \"/aws/kinesisfirehose/${StreamName}\"",
            "LogStreamName: DestinationDelivery",
            "RetentionInDays: !Ref LogRetentionDays",
            "Action: logs:PutLogEvents",
            "DynamicPartitioningConfiguration: !If",
            "Type: RecordDeAggregation",
            "ParameterValue: JQ-1.6",
            "Type: AppendDelimiterToRecord",
            "Type: Lambda",
            "ParameterName: LambdaArn",
            &format!("PolicyName: {TRANSFORM_POLICY_NAME}"),
            "Sid: FirehoseTransform",
            "- lambda:InvokeFunction\n",
            "- lambda:GetFunctionConfiguration\n",
            "- !Sub \"${TransformFunctionArn}:*\"",
            "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/",
            &format!("PolicyName: {SCHEMA_POLICY_NAME}"),
            "Sid: FirehoseReadSchema",
            "- glue:GetTable\n",
            "- glue:GetTableVersion\n",
            "- glue:GetTableVersions\n",
            "OpenXJsonSerDe: {}",
            "CompressionFormat: !If [Parquet, UNCOMPRESSED, !Ref Compression]",
            "firehose-kit:stream: !Ref StreamName",
        ] {
            assert!(cfn.contains(text), "{text}");
        }
        for action in firehose_kit_domain::kinesis::SOURCE_READ_ACTIONS {
            assert!(cfn.contains(&format!("- {action}\n")), "{action}: the grant setup writes");
        }
        let tagged = "bucket, role, log group, data stream and stream tagged";
        assert_eq!(cfn.matches(&format!("Key: {MANAGED_TAG}")).count(), 5, "{tagged}");
        assert_eq!(cfn.matches(&format!("Key: {STREAM_TAG}")).count(), 5);
        for flag in [
            "BlockPublicAcls: true",
            "IgnorePublicAcls: true",
            "BlockPublicPolicy: true",
            "RestrictPublicBuckets: true",
        ] {
            assert!(cfn.contains(flag), "{flag}");
        }
    }

    /// The stack's partitioning choices are what `setup --partition-by` writes.
    #[test]
    fn the_cloudformation_partitioning_matches_setup() {
        use crate::logs::partition::PartitionBy;
        let cfn = std::fs::read_to_string(format!("{TEMPLATES}/cloudformation.yaml")).unwrap();
        for keys in ["status", "date", "status,date"] {
            let p = PartitionBy::parse(&[keys.to_string()]).unwrap();
            assert!(cfn.contains(&format!("Query: \"{}\"", p.query())), "{keys}");
            assert!(cfn.contains(&format!("Segments: \"{}\"", p.prefix(""))), "{keys}");
        }
        assert!(cfn.contains(&PartitionBy::error_prefix("${Prefix}")));
    }

    #[test]
    fn the_operator_policy_covers_every_call_firehose_kit_makes() {
        let doc = template("operator-policy.json");
        let allowed: Vec<String> = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|st| match &st["Action"] {
                Value::String(a) => vec![a.clone()],
                Value::Array(list) => list.iter().map(|a| a.as_str().unwrap().to_string()).collect(),
                _ => vec![],
            })
            .collect();
        // SDK calls in src/aws and src/commands, and the IAM action each one needs.
        let calls = [
            ("get_caller_identity()", "sts:GetCallerIdentity"),
            ("create_bucket()", "s3:CreateBucket"),
            ("head_bucket()", "s3:ListBucket"),
            ("delete_bucket()", "s3:DeleteBucket"),
            ("get_bucket_tagging()", "s3:GetBucketTagging"),
            ("put_bucket_tagging()", "s3:PutBucketTagging"),
            ("get_public_access_block()", "s3:GetBucketPublicAccessBlock"),
            ("put_public_access_block()", "s3:PutBucketPublicAccessBlock"),
            ("get_bucket_ownership_controls()", "s3:GetBucketOwnershipControls"),
            ("put_bucket_ownership_controls()", "s3:PutBucketOwnershipControls"),
            ("get_bucket_encryption()", "s3:GetEncryptionConfiguration"),
            ("put_bucket_encryption()", "s3:PutEncryptionConfiguration"),
            ("get_bucket_policy()", "s3:GetBucketPolicy"),
            ("put_bucket_policy()", "s3:PutBucketPolicy"),
            ("list_objects_v2()", "s3:ListBucket"),
            ("list_object_versions()", "s3:ListBucketVersions"),
            ("get_object()", "s3:GetObject"),
            ("delete_objects()", "s3:DeleteObjectVersion"),
            ("get_role()", "iam:GetRole"),
            ("create_role()", "iam:CreateRole"),
            ("delete_role()", "iam:DeleteRole"),
            ("tag_role()", "iam:TagRole"),
            ("list_role_tags()", "iam:ListRoleTags"),
            ("update_assume_role_policy()", "iam:UpdateAssumeRolePolicy"),
            ("get_role_policy()", "iam:GetRolePolicy"),
            ("put_role_policy()", "iam:PutRolePolicy"),
            ("delete_role_policy()", "iam:DeleteRolePolicy"),
            ("list_role_policies()", "iam:ListRolePolicies"),
            ("list_attached_role_policies()", "iam:ListAttachedRolePolicies"),
            ("detach_role_policy()", "iam:DetachRolePolicy"),
            ("create_delivery_stream()", "firehose:CreateDeliveryStream"),
            ("describe_delivery_stream()", "firehose:DescribeDeliveryStream"),
            ("list_delivery_streams()", "firehose:ListDeliveryStreams"),
            ("update_destination()", "firehose:UpdateDestination"),
            ("delete_delivery_stream()", "firehose:DeleteDeliveryStream"),
            ("list_tags_for_delivery_stream()", "firehose:ListTagsForDeliveryStream"),
            ("put_record_batch()", "firehose:PutRecordBatch"),
            ("create_log_group()", "logs:CreateLogGroup"),
            ("create_log_stream()", "logs:CreateLogStream"),
            ("describe_log_groups()", "logs:DescribeLogGroups"),
            ("describe_log_streams()", "logs:DescribeLogStreams"),
            ("put_retention_policy()", "logs:PutRetentionPolicy"),
            ("tag_resource()", "logs:TagResource"),
            ("list_tags_for_resource()", "logs:ListTagsForResource"),
            ("delete_log_group()", "logs:DeleteLogGroup"),
            ("filter_log_events()", "logs:FilterLogEvents"),
            ("get_policy()", "iam:GetPolicy"),
            ("get_policy_version()", "iam:GetPolicyVersion"),
            ("get_bucket_location()", "s3:GetBucketLocation"),
            ("get_function()", "lambda:GetFunction"),
            ("get_function()", "lambda:ListTags"),
            ("create_function()", "lambda:CreateFunction"),
            ("create_function()", "lambda:TagResource"),
            ("create_function()", "iam:PassRole"),
            ("update_function_code()", "lambda:UpdateFunctionCode"),
            ("update_function_configuration()", "lambda:UpdateFunctionConfiguration"),
            ("get_function_configuration()", "lambda:GetFunctionConfiguration"),
            ("tag_resource()", "lambda:TagResource"),
            ("delete_function()", "lambda:DeleteFunction"),
            ("invoke()", "lambda:InvokeFunction"),
            ("describe_stream_summary()", "kinesis:DescribeStreamSummary"),
            ("list_tags_for_stream()", "kinesis:ListTagsForStream"),
            ("create_stream()", "kinesis:CreateStream"),
            ("add_tags_to_stream()", "kinesis:AddTagsToStream"),
            ("delete_stream()", "kinesis:DeleteStream"),
            ("put_records()", "kinesis:PutRecords"),
            ("get_database()", "glue:GetDatabase"),
            ("create_database()", "glue:CreateDatabase"),
            ("delete_database()", "glue:DeleteDatabase"),
            ("get_table()", "glue:GetTable"),
            ("get_tables()", "glue:GetTables"),
            ("create_table()", "glue:CreateTable"),
            ("update_table()", "glue:UpdateTable"),
            ("delete_table()", "glue:DeleteTable"),
        ];
        // Every Rust file under these directories, their subdirectories (a command split into a module) included.
        let mut sources = String::new();
        let mut dirs: Vec<std::path::PathBuf> = ["src/aws", "src/commands"]
            .iter()
            .map(|d| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(d))
            .collect();
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    sources.push_str(&std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        for (call, action) in calls {
            assert!(sources.contains(&format!(".{call}")), "{call} is no longer used: update this list");
            assert!(
                allowed.iter().any(|a| a == action),
                "{action} (for {call}) missing from templates/operator-policy.json"
            );
        }
        // Every SDK operation the code sends is in the list above, however its call is laid out.
        let known: Vec<&str> = calls.iter().map(|(c, _)| *c).collect();
        let operations = sent_operations(&sources);
        assert!(operations.len() >= 50, "the parser found only {} calls: {operations:?}", operations.len());
        for call in operations {
            assert!(known.contains(&call.as_str()), "{call} is not in the operator-policy check");
        }
    }

    /// The operation of every `….send()` chain in Rust source, whitespace and line breaks ignored: the first
    /// method called on the client (`clients.s3.get_object().bucket(b).key(k).send()` → `get_object()`).
    fn sent_operations(source: &str) -> Vec<String> {
        let code: Vec<char> = source.chars().filter(|c| !c.is_whitespace()).collect();
        let send: Vec<char> = ".send()".chars().collect();
        let mut out = Vec::new();
        for at in (0..code.len()).filter(|&i| code[i..].starts_with(&send)) {
            let mut end = at; // the end of the call before `.send()`
            let mut first = None;
            loop {
                if end == 0 || code[end - 1] != ')' {
                    break;
                }
                // Back over the balanced argument list.
                let mut depth = 0i32;
                let mut i = end;
                while i > 0 {
                    i -= 1;
                    match code[i] {
                        ')' => depth += 1,
                        '(' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let name_end = i;
                let mut name_start = i;
                while name_start > 0 && (code[name_start - 1].is_ascii_alphanumeric() || code[name_start - 1] == '_') {
                    name_start -= 1;
                }
                if name_start == 0 || code[name_start - 1] != '.' || name_start == name_end {
                    break;
                }
                first = Some(code[name_start..name_end].iter().collect::<String>());
                end = name_start - 1;
            }
            if let Some(name) =
                first.filter(|n| n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            {
                out.push(format!("{name}()"));
            }
        }
        out
    }

    #[test]
    fn chains_split_over_lines_are_found() {
        let src = "let x = fh\n    .list_delivery_streams()\n    .limit(100)\n    .set_start(f(a, (b)))\n    .send()\n    .await;\nclients.s3.get_object().bucket(b).send().await;";
        assert_eq!(sent_operations(src), vec!["list_delivery_streams()", "get_object()"]);
    }

    #[test]
    fn managed_tag_is_recognised() {
        assert!(is_managed(&tags("S")));
        assert!(!is_managed(&[("firehose-kit:managed".into(), "false".into())]));
        assert!(same_document(r#"{ "b": 1, "a": [1] }"#, &json!({"a": [1], "b": 1})));
    }
}
