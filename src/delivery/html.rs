//! The delivery report as one self-contained HTML page (`verify --report FILE.html`): inline CSS and SVG, no
//! script and no network, so it opens anywhere and can be attached to a change. It is a view of the data
//! `verify -o json` prints: the verdict, a delivery timeline (each object at its delivery time, its height its
//! size, its buffering span drawn, coloured by flush reason, with the size hint), the buffered time of each
//! object against the interval hint, the objects, partitions, the error output and delivery errors, the cost,
//! and the stream's configuration. Charts are drawn with plotters' SVG backend; each has a title, a
//! description, and its numbers in a table beside it.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use plotters::prelude::*;

use super::compare::Tally;
use super::partitions::{ErrorRecords, PartitionSummary};
use super::report::{Buffering, DeliveredObject, FlushedBy};
use crate::ui::{format_bytes, format_count};
use crate::util::markup::escape;

/// What the page shows (borrowed from verify's report).
pub struct Page<'a> {
    pub stream: &'a str,
    pub bucket: &'a str,
    pub endpoint: &'a str,
    pub runs: &'a [String],
    pub tally: &'a Tally,
    pub verified: bool,
    pub objects: &'a [DeliveredObject],
    pub buffering: &'a Buffering,
    /// The interval that applied (the hint divided by an emulator's `--speed`).
    pub effective_interval_s: f64,
    pub speed: f64,
    pub partitions: &'a [PartitionSummary],
    pub misplaced_lines: u64,
    pub error_objects: &'a [String],
    pub error_records: &'a [ErrorRecords],
    /// Delivery errors and their causes, as verify words them.
    pub causes: Vec<String>,
    pub cost: Option<Cost>,
    /// The stream's destination as Describe returned it (pretty JSON).
    pub configuration: String,
    pub generated: DateTime<Utc>,
    /// A transformed stream: what became of each sent line.
    pub transform: Option<&'a crate::delivery::transformed::TransformTally>,
    /// A converting stream: rows, lines that did not convert, and the Parquet schema.
    pub conversion: Option<&'a crate::delivery::converted::ConversionReport>,
}

/// What the run's lines were billed as.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Cost {
    pub raw_bytes: u64,
    pub billable_bytes: u64,
    pub billable_one_line_per_record: u64,
    pub records: u64,
    pub lines: u64,
}

const SIZE_COLOR: RGBColor = RGBColor(0x1f, 0x6f, 0xb4);
const INTERVAL_COLOR: RGBColor = RGBColor(0xe0, 0x7b, 0x10);
const HINT_COLOR: RGBColor = RGBColor(0xb0, 0x30, 0x30);

fn reason(o: &DeliveredObject) -> &'static str {
    match o.flushed_by {
        FlushedBy::Size => "size",
        FlushedBy::Interval => "interval",
    }
}

/// Gives a plotters SVG a title and a description for screen readers.
fn label_svg(svg: &str, id: &str, title: &str, desc: &str) -> String {
    let Some(end) = svg.find('>') else {
        return svg.to_string();
    };
    format!(
        "{} role=\"img\" aria-labelledby=\"{id}-t {id}-d\"><title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>{}",
        &svg[..end],
        escape(title),
        escape(desc),
        &svg[end + 1..]
    )
}

/// Seconds since `origin` of a time.
fn secs(t: DateTime<Utc>, origin: DateTime<Utc>) -> f64 {
    (t - origin).num_milliseconds() as f64 / 1000.0
}

/// The delivery timeline: one mark per object at its delivery time (height: MiB), a line from its oldest
/// record's arrival to its delivery, the size hint across.
fn timeline(p: &Page<'_>) -> Result<String, String> {
    let points: Vec<(f64, f64, f64, &DeliveredObject)> = {
        let origin = p.objects.iter().filter_map(|o| o.key_time).min();
        match origin {
            None => Vec::new(),
            Some(origin) => p
                .objects
                .iter()
                .filter_map(|o| {
                    let delivered = secs(o.last_modified?, origin);
                    let start = o.key_time.map_or(delivered, |k| secs(k, origin));
                    Some((start, delivered, o.bytes as f64 / 1_048_576.0, o))
                })
                .collect(),
        }
    };
    let hint = p.buffering.size_hint_mib as f64;
    let x_max = points.iter().map(|x| x.1).fold(1.0, f64::max) * 1.08;
    let y_max = points.iter().map(|x| x.2).fold(hint, f64::max) * 1.25;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (880, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("seconds since the first record arrived")
            .y_desc("object size (MiB, uncompressed)")
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(vec![(0.0, hint), (x_max, hint)], HINT_COLOR.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(format!("size hint {} MiB", p.buffering.size_hint_mib))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], HINT_COLOR.stroke_width(2)));
        for (color, which, label) in [
            (SIZE_COLOR, FlushedBy::Size, "flushed by size"),
            (INTERVAL_COLOR, FlushedBy::Interval, "flushed by interval"),
        ] {
            let mine: Vec<&(f64, f64, f64, &DeliveredObject)> =
                points.iter().filter(|x| x.3.flushed_by == which).collect();
            chart
                .draw_series(mine.iter().map(|(s, d, m, _)| PathElement::new(vec![(*s, *m), (*d, *m)], color.mix(0.5))))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(mine.iter().map(|(_, d, m, _)| Circle::new((*d, *m), 5, color.filled())))
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 9, y), 5, color.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    let by_size = points.iter().filter(|x| x.3.flushed_by == FlushedBy::Size).count();
    let desc = format!(
        "{} objects over {:.0} seconds: {by_size} flushed by size, {} by interval; the size hint is {} MiB and the interval {:.0} s. Each object's numbers are in the objects table.",
        points.len(),
        x_max / 1.08,
        points.len() - by_size,
        p.buffering.size_hint_mib,
        p.effective_interval_s
    );
    Ok(label_svg(&svg, "timeline", "Delivery timeline", &desc))
}

/// A histogram bin: from, to (seconds), objects.
type Bin = (f64, f64, usize);

/// How long each object's data waited, in bins, against the interval.
fn waits(p: &Page<'_>) -> Result<(String, Vec<Bin>), String> {
    let delays: Vec<f64> = p.objects.iter().filter_map(|o| o.delay_s).map(|d| d.max(0.0)).collect();
    let interval = p.effective_interval_s.max(0.001);
    let top = delays.iter().copied().fold(interval * 1.2, f64::max);
    let bins = 12usize;
    let width = top / bins as f64;
    let mut counts = vec![0usize; bins];
    for d in &delays {
        counts[((d / width) as usize).min(bins - 1)] += 1;
    }
    let table: Vec<Bin> =
        counts.iter().enumerate().map(|(i, &n)| (i as f64 * width, (i + 1) as f64 * width, n)).collect();
    let y_max = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.2;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (880, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..top, 0f64..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("seconds an object's oldest record waited before delivery")
            .y_desc("objects")
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(table.iter().map(|(a, b, n)| {
                let color = if *a >= interval { INTERVAL_COLOR } else { SIZE_COLOR };
                Rectangle::new([(*a + width * 0.05, 0.0), (*b - width * 0.05, *n as f64)], color.mix(0.8).filled())
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(vec![(interval, 0.0), (interval, y_max)], HINT_COLOR.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(format!("interval {interval:.0} s"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], HINT_COLOR.stroke_width(2)));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    let desc = format!(
        "{} objects by how long their data waited, in {bins} bins of {width:.1} s; the interval hint is {interval:.0} s. The counts are in the table beside the chart.",
        delays.len()
    );
    Ok((label_svg(&svg, "waits", "Buffered time against the interval", &desc), table))
}

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#1d2330;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
.meta{color:#5b6578}.verdict{display:inline-block;padding:4px 12px;border-radius:6px;font-weight:700;color:#fff}
.ok{background:#2b8a3e}.failed{background:#c92a2a}.grid{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,1fr);gap:16px;align-items:start}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #e6e9ef;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f6f9}td.n{text-align:right;font-variant-numeric:tabular-nums}code,pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
pre{background:#f6f8fa;padding:12px;overflow:auto;border-radius:6px}.key{word-break:break-all}.size{color:#1f6fb4}.interval{color:#e07b10}
svg{max-width:100%;height:auto;border:1px solid #e6e9ef;border-radius:6px}.note{color:#5b6578;font-size:13px}";

/// Renders the page: one section after another.
pub fn render(p: &Page<'_>) -> Result<String, String> {
    let mut h = String::new();
    header(&mut h, p);
    verdict(&mut h, p);
    transformation(&mut h, p);
    conversion(&mut h, p);
    delivery(&mut h, p)?;
    objects(&mut h, p);
    partitions(&mut h, p);
    errors(&mut h, p);
    cost(&mut h, p);
    configuration(&mut h, p);
    Ok(h)
}

/// The document head, the title and what was checked where.
fn header(h: &mut String, p: &Page<'_>) {
    let title = format!("Delivery report: {}", p.stream);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(&title)
    );
    let _ = write!(
        h,
        "<h1>{}</h1><p class=\"meta\">firehose-kit verify · stream <b>{}</b> · bucket <code>s3://{}</code> · {} · run {} · {}</p>",
        escape(&title),
        escape(p.stream),
        escape(p.bucket),
        escape(p.endpoint),
        escape(&if p.runs.is_empty() { "(--expect files)".to_string() } else { p.runs.join(" + ") }),
        p.generated.format("%Y-%m-%d %H:%M:%S UTC")
    );
    if p.speed != 1.0 {
        let _ = write!(
            h,
            "<p class=\"note\">The emulator ran {}× faster than AWS (<code>--speed</code>): intervals are {}× shorter than configured.</p>",
            p.speed, p.speed
        );
    }
}

/// The verdict and the tally of lines; the buffering sentence.
fn verdict(h: &mut String, p: &Page<'_>) {
    let t = p.tally;
    let _ = write!(
        h,
        "<h2>Verdict</h2><p><span id=\"verdict\" class=\"verdict {}\">{}</span></p><table id=\"tally\"><tr><th>lines sent</th><th>matched</th><th>missing</th><th>duplicated</th><th>extra</th><th>objects</th><th>delivered</th></tr><tr><td class=\"n\" data-n=\"{}\">{}</td><td class=\"n\" data-n=\"{}\">{}</td><td class=\"n\" data-n=\"{}\">{}</td><td class=\"n\" data-n=\"{}\">{}</td><td class=\"n\" data-n=\"{}\">{}</td><td class=\"n\" data-n=\"{}\">{}</td><td class=\"n\">{}</td></tr></table>",
        if p.verified { "ok" } else { "failed" },
        if p.verified { "VERIFIED" } else { "FAILED" },
        t.expected,
        format_count(t.expected),
        t.matched,
        format_count(t.matched),
        t.missing,
        format_count(t.missing),
        t.duplicated,
        format_count(t.duplicated),
        t.extra,
        format_count(t.extra),
        p.objects.len(),
        format_count(p.objects.len() as u64),
        format_bytes(p.objects.iter().map(|o| o.bytes).sum())
    );
    if p.misplaced_lines > 0 {
        let _ = write!(
            h,
            "<p><b>{} lines are in a partition their own fields do not map to.</b></p>",
            format_count(p.misplaced_lines)
        );
    }
    let _ = write!(h, "<p>{}</p>", escape(&p.buffering.sentence()));
}

/// A transformed stream: each sent line transformed and delivered, dropped, processing-failed, or missing.
fn transformation(h: &mut String, p: &Page<'_>) {
    let Some(x) = p.transform else { return };
    let _ = write!(
        h,
        "<h2>Transformation</h2><p class=\"note\">Records were transformed by <code>{}</code>. verify ran it over the sent lines to know what each should become, and matched the processing-failed documents to the sent lines by their original data. The tally above counts the function's output lines.</p><table id=\"transform\"><tr><th>lines sent</th><th>transformed and delivered</th><th>dropped by the function</th><th>processing-failed</th><th>failed invocations</th><th>missing</th></tr><tr>",
        escape(&x.function)
    );
    for n in [x.lines, x.transformed, x.dropped, x.processing_failed, x.failed_invocations, x.missing] {
        let _ = write!(h, "<td class=\"n\" data-n=\"{n}\">{}</td>", format_count(n));
    }
    h.push_str("</tr></table>");
}

/// A converting stream: rows against lines, the lines that did not convert by code, and the schema.
fn conversion(h: &mut String, p: &Page<'_>) {
    let Some(c) = p.conversion else { return };
    let _ = write!(
        h,
        "<h2>Parquet</h2><p class=\"note\">Records were converted to Parquet typed by Glue table <code>{}.{}</code>. verify read each row back as the JSON document send made of its line: a row matches a line only when every typed field is equal. Lines that did not convert are matched through the <code>format-conversion-failed</code> error output.</p><table id=\"conversion\"><tr><th>rows</th><th>lines that did not convert</th></tr><tr><td class=\"n\" data-n=\"{}\">{}</td><td class=\"n\" data-n=\"{}\">{}</td></tr></table>",
        escape(&c.database),
        escape(&c.table),
        c.rows,
        format_count(c.rows),
        c.failed_lines,
        format_count(c.failed_lines)
    );
    if !c.failures.is_empty() {
        h.push_str("<table id=\"conversion-failures\"><tr><th>code</th><th>records</th><th>message</th></tr>");
        for f in &c.failures {
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td class=\"n\" data-n=\"{}\">{}</td><td>{}</td></tr>",
                escape(&f.code),
                f.count,
                format_count(f.count),
                escape(&f.example)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<table id=\"schema\"><tr><th>column</th><th>type</th></tr>");
    for (name, ty) in &c.schema {
        let _ = write!(h, "<tr><td><code>{}</code></td><td>{}</td></tr>", escape(name), escape(ty));
    }
    h.push_str("</table>");
    for problem in &c.schema_problems {
        let _ = write!(h, "<p><b>Not the Apache table setup makes: {}</b></p>", escape(problem));
    }
}

/// The delivery timeline and how long objects were buffered.
fn delivery(h: &mut String, p: &Page<'_>) -> Result<(), String> {
    let _ = write!(
        h,
        "<h2>Delivery timeline</h2><p class=\"note\">Each object is a mark at the time it was delivered, as high as its size; the line behind it runs from its oldest record's arrival. <span class=\"size\">●</span> flushed by size (the buffer reached the size hint, or was cut early) · <span class=\"interval\">●</span> flushed by interval.</p>{}",
        timeline(p)?
    );

    let (wait_svg, bins) = waits(p)?;
    let _ = write!(
        h,
        "<h2>Buffered time</h2><div class=\"grid\"><div>{wait_svg}</div><table id=\"waits\"><tr><th>waited (s)</th><th>objects</th></tr>"
    );
    for (a, b, n) in &bins {
        let _ = write!(h, "<tr><td>{a:.1}–{b:.1}</td><td class=\"n\">{n}</td></tr>");
    }
    h.push_str("</table></div>");
    Ok(())
}

/// Every delivered object.
fn objects(h: &mut String, p: &Page<'_>) {
    let unit = if p.conversion.is_some() { "rows" } else { "lines" };
    let _ = write!(
        h,
        "<h2>Objects</h2><table id=\"objects\"><tr><th>key</th><th>size</th><th>{unit}</th><th>buffered (s)</th><th>flushed by</th><th>delivered</th></tr>"
    );
    for o in p.objects {
        let _ = write!(
            h,
            "<tr class=\"object\"><td class=\"key\">{}</td><td class=\"n\" data-bytes=\"{}\">{}</td><td class=\"n\" data-n=\"{}\">{}</td><td class=\"n\">{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            escape(&o.key),
            o.bytes,
            format_bytes(o.bytes),
            o.lines,
            format_count(o.lines),
            o.delay_s.map(|d| format!("{d:.1}")).unwrap_or_default(),
            reason(o),
            reason(o),
            o.last_modified.map(|t| t.format("%H:%M:%S").to_string()).unwrap_or_default()
        );
    }
    h.push_str("</table>");
}

/// Per partition, when the stream partitions.
fn partitions(h: &mut String, p: &Page<'_>) {
    if !p.partitions.is_empty() {
        let _ = write!(
            h,
            "<h2>Partitions</h2><table id=\"partitions\"><tr><th>prefix</th><th>objects</th><th>lines</th><th>bytes</th><th>by size</th><th>by interval</th></tr>"
        );
        for part in p.partitions {
            let _ = write!(
                h,
                "<tr><td class=\"key\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&part.prefix),
                part.objects,
                format_count(part.lines),
                format_bytes(part.bytes),
                part.by_size,
                part.by_interval
            );
        }
        h.push_str("</table>");
    }
}

/// Causes, error records and error-output objects, when there are any.
fn errors(h: &mut String, p: &Page<'_>) {
    if !p.error_objects.is_empty() || !p.error_records.is_empty() || !p.causes.is_empty() {
        h.push_str("<h2>Errors</h2>");
        if !p.causes.is_empty() {
            let _ = write!(h, "<pre id=\"causes\">{}</pre>", escape(&p.causes.join("\n")));
        }
        if !p.error_records.is_empty() {
            h.push_str("<table id=\"error-records\"><tr><th>error code</th><th>records</th><th>example</th></tr>");
            for e in p.error_records {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                    escape(&e.code),
                    e.count,
                    escape(&e.example)
                );
            }
            h.push_str("</table>");
        }
        if !p.error_objects.is_empty() {
            let _ = write!(h, "<p>{} objects under the error output prefix:</p><ul>", p.error_objects.len());
            for k in p.error_objects.iter().take(50) {
                let _ = write!(h, "<li class=\"key\"><code>{}</code></li>", escape(k));
            }
            h.push_str("</ul>");
        }
    }
}

/// The billable bytes as sent against one line per record.
fn cost(h: &mut String, p: &Page<'_>) {
    if let Some(c) = &p.cost {
        let ratio = |b: u64| if c.raw_bytes > 0 { b as f64 / c.raw_bytes as f64 } else { 0.0 };
        let _ = write!(
            h,
            "<h2>Cost</h2><p class=\"note\">Firehose bills each record rounded up to 5 KB.</p><table id=\"cost\"><tr><th></th><th>bytes</th><th>billable / raw</th></tr><tr><td>raw ({} lines)</td><td class=\"n\">{}</td><td class=\"n\">1.00</td></tr><tr><td>billable as sent ({} records)</td><td class=\"n\">{}</td><td class=\"n\">{:.2}</td></tr><tr><td>billable one line per record</td><td class=\"n\">{}</td><td class=\"n\">{:.2}</td></tr></table>",
            format_count(c.lines),
            format_bytes(c.raw_bytes),
            format_count(c.records),
            format_bytes(c.billable_bytes),
            ratio(c.billable_bytes),
            format_bytes(c.billable_one_line_per_record),
            ratio(c.billable_one_line_per_record)
        );
    }
}

/// The stream configuration, and the footer.
fn configuration(h: &mut String, p: &Page<'_>) {
    let _ = write!(
        h,
        "<h2>Stream configuration</h2><p class=\"note\">The destination as DescribeDeliveryStream returned it.</p><pre id=\"configuration\">{}</pre>",
        escape(&p.configuration)
    );
    h.push_str("<p class=\"note\">Generated by firehose-kit. The same data is in <code>firehose-kit verify -o json</code>.</p></body></html>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::report::summarize;

    fn object(key: &str, bytes: u64, delay: f64, at: i64) -> DeliveredObject {
        let t0 = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        DeliveredObject {
            key: key.into(),
            size: bytes,
            bytes,
            lines: bytes / 100,
            last_modified: Some(t0 + chrono::Duration::seconds(at)),
            key_time: Some(t0 + chrono::Duration::milliseconds(at * 1000 - (delay * 1000.0) as i64)),
            delay_s: Some(delay),
            flushed_by: super::super::report::flushed_by(bytes, 1, Some(delay), 60.0),
            matched_lines: bytes / 100,
            layout_problems: vec![],
            kept_as: None,
            schema: None,
            not_read_through: None,
        }
    }

    #[test]
    fn the_page_is_self_contained_escaped_and_labelled() {
        let objects = vec![object("a/<b>&x", 1_048_576, 1.0, 2), object("a/c", 300_000, 61.0, 70)];
        let buffering = summarize(&objects, 1, 60, 1.0);
        let tally = Tally { expected: 13_485, matched: 13_485, ..Default::default() };
        let page = Page {
            stream: "S",
            bucket: "b",
            endpoint: "AWS us-east-2",
            runs: &["r1".to_string()],
            tally: &tally,
            verified: true,
            objects: &objects,
            buffering: &buffering,
            effective_interval_s: 60.0,
            speed: 1.0,
            partitions: &[],
            misplaced_lines: 0,
            error_objects: &[],
            error_records: &[],
            causes: vec![],
            cost: None,
            configuration: "{\"x\": \"<y>\"}".into(),
            generated: Utc::now(),
            transform: None,
            conversion: None,
        };
        let html = render(&page).unwrap();
        assert!(html.contains("a/&lt;b&gt;&amp;x") && !html.contains("<b>&x"), "keys are escaped");
        assert!(
            !html.contains("<script") && !html.contains(" src=") && !html.contains("href=\"http"),
            "no script, nothing fetched"
        );
        assert_eq!(html.matches("<svg").count(), 2);
        assert!(html.contains("<title id=\"timeline-t\">Delivery timeline</title>"));
        assert!(html.contains("role=\"img\""));
        assert!(html.contains("VERIFIED"));
    }
}
