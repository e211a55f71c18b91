//! The HTML delivery report of a known run, read back by parsing the page (not by comparing it with a snapshot):
//! its numbers must be the ones `verify -o json` gives for the same run.

use crate::html::{Doc, Elem};
use crate::support::{self, assert_exit, cli, json_out, start};

fn select<'a>(doc: &'a Doc, css: &str) -> Vec<Elem<'a>> {
    doc.select(css)
}

fn text(e: &Elem<'_>) -> String {
    e.text()
}

/// A run with size- and interval-flushed objects, verified with `--report`; returns the page and the JSON.
pub async fn known_run(dir: &std::path::Path) -> (std::path::PathBuf, serde_json::Value, support::Env) {
    let env = start().await;
    let ep = env.emu.endpoint().to_string();
    assert_exit(&cli(&ep, dir, &["setup", "--buffer-interval", "1"]), 0);
    support::log_file(dir, "access.log", 30_000, 3);
    assert_exit(&cli(&ep, dir, &["send", "access.log"]), 0);
    let page = dir.join("out/report.html");
    let out = cli(&ep, dir, &["verify", "--report", page.to_str().unwrap(), "-o", "json"]);
    assert_exit(&out, 0);
    (page, json_out(&out), env)
}

#[tokio::test]
async fn the_report_shows_the_numbers_of_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (page, v, _env) = known_run(dir.path()).await;
    let html = std::fs::read_to_string(&page).unwrap();
    let doc = Doc::parse(&html);

    assert_eq!(text(&select(&doc, "#verdict")[0]), "VERIFIED");
    let tally: Vec<u64> =
        select(&doc, "#tally td[data-n]").iter().map(|td| td.attr("data-n").unwrap().parse().unwrap()).collect();
    let objects = v["objects"].as_array().unwrap();
    assert_eq!(
        tally,
        vec![
            v["expected"].as_u64().unwrap(),
            v["matched"].as_u64().unwrap(),
            v["missing"].as_u64().unwrap(),
            v["duplicated"].as_u64().unwrap(),
            v["extra"].as_u64().unwrap(),
            objects.len() as u64
        ]
    );
    assert_eq!(tally[1], 30_000);

    // One row per object, with its key, size, lines and flush reason, as in the JSON.
    let rows = select(&doc, "#objects tr.object");
    assert_eq!(rows.len(), objects.len());
    let mut reasons = std::collections::BTreeMap::new();
    for (row, o) in rows.iter().zip(objects) {
        let cells: Vec<Elem<'_>> = row.select("td");
        assert_eq!(text(&cells[0]), o["key"].as_str().unwrap());
        assert_eq!(cells[1].attr("data-bytes").unwrap(), o["bytes"].to_string());
        assert_eq!(cells[2].attr("data-n").unwrap(), o["lines"].to_string());
        assert_eq!(text(&cells[4]), o["flushed_by"].as_str().unwrap());
        *reasons.entry(text(&cells[4])).or_insert(0) += 1;
    }
    assert!(reasons.get("size").copied().unwrap_or(0) >= 4, "1 MiB objects cut by size: {reasons:?}");
    assert!(reasons.contains_key("interval"), "the last one by the 1 s interval: {reasons:?}");

    // Two charts, each with a title, a description and its numbers beside it.
    let svgs = select(&doc, "svg");
    assert_eq!(svgs.len(), 2);
    for svg in &svgs {
        assert_eq!(svg.attr("role"), Some("img"));
    }
    assert_eq!(select(&doc, "svg title").len(), 2);
    let bins: u64 = select(&doc, "#waits td.n").iter().map(|td| text(td).parse::<u64>().unwrap()).sum();
    assert_eq!(bins, objects.len() as u64, "the histogram's table counts every object");

    // Cost from the run's manifest, and the configuration Describe returned.
    let cost = select(&doc, "#cost td.n");
    assert!(!cost.is_empty());
    assert!(text(&select(&doc, "#configuration")[0]).contains("firehose-kit-000000000000-us-east-2"));
    assert!(!html.contains("<script"), "readable without JavaScript");
    assert_eq!(v["cost"]["lines"], 30_000);
}
