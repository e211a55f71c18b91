//! `make bench`'s load generator: `loadgen ENDPOINT SECONDS BUCKET STREAM...` drives the streams with 32
//! clients (seven on each of the first half of the streams, one paced client on each of the others), then
//! checks that every acknowledged record was delivered exactly once, and prints one JSON document.

use std::time::Duration;

use firehose_kit::loadgen::{self, LoadSpec};
use firehose_kit::settings::Connection;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, seconds, bucket, streams @ ..] = args.as_slice() else {
        return Err("usage: loadgen ENDPOINT SECONDS BUCKET STREAM...".into());
    };
    if streams.is_empty() || streams.len() % 2 != 0 {
        return Err("give an even number of streams: the first half is driven past its quota".into());
    }
    let connection = Connection {
        profile: None,
        region: Some("us-east-2".into()),
        endpoint_url: Some(endpoint.clone()),
        test_credentials: true,
    };
    let clients = firehose_kit::aws::Clients::connect(&connection).await?;
    let half = streams.len() / 2;
    let busy = 32 - half;
    let mut per_stream: Vec<usize> = (0..half).map(|i| busy / half + usize::from(i < busy % half)).collect();
    per_stream.extend(std::iter::repeat_n(1, half));
    let spec = LoadSpec {
        streams: streams.to_vec(),
        clients_per_stream: per_stream,
        batch_records: 500,
        record_size: 300,
        paced: streams[half..].iter().map(|s| (s.clone(), Duration::from_millis(20))).collect(),
        duration: Duration::from_secs_f64(seconds.parse()?),
    };
    let (report, acked) = loadgen::run(&clients, &spec).await;
    let check = loadgen::check_delivery(&clients, bucket, &acked, Duration::from_secs(120)).await?;
    println!("{}", serde_json::json!({ "report": report, "delivery": check, "exactly_once": check.exactly_once() }));
    Ok(())
}
