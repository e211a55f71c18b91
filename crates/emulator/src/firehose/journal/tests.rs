//! Tests of the journal: batches, marks, torn tails, failed writes, the first format, progress.

use super::*;

fn open(dir: &Path) -> Journal {
    Journal::open(dir, Durability::Process, 0, BTreeMap::new()).unwrap()
}

fn at(arrival: i64, records: &[&'static [u8]]) -> Vec<(i64, &'static [u8])> {
    records.iter().map(|r| (arrival, *r)).collect()
}

fn records(dir: &Path, from: u64, end: u64) -> Vec<(i64, Vec<u8>)> {
    Reader::new(dir, 0).read_range(from, end).unwrap()
}

#[test]
fn appended_records_read_back_after_reopen_and_a_torn_batch_is_cut_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = open(dir.path());
    let ends = j.append(at(7, &[b"ab", b"", b"xyz"]).into_iter(), None).unwrap();
    assert_eq!(ends, vec![14, 26, 41]);
    drop(j);
    // A torn batch: one whole frame without END, then a header claiming 100 bytes with 3 present.
    let seg = dir.path().join(segment_name(0));
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&1u32.to_le_bytes()).unwrap();
    f.write_all(&9i64.to_le_bytes()).unwrap();
    f.write_all(b"w").unwrap();
    f.write_all(&100u32.to_le_bytes()).unwrap();
    f.write_all(&[0u8; 11]).unwrap();
    drop(f);
    let mut j = open(dir.path());
    assert_eq!(j.end(), 41, "the whole torn batch is cut, its complete frame too");
    j.append(at(8, &[b"q"]).into_iter(), None).unwrap();
    let all = records(dir.path(), 0, j.end());
    let data: Vec<&[u8]> = all.iter().map(|(_, d)| d.as_slice()).collect();
    assert_eq!(data, vec![b"ab".as_slice(), b"", b"xyz", b"q"]);
    assert_eq!(records(dir.path(), 26, j.end()).iter().map(|r| r.0).collect::<Vec<_>>(), [7, 8]);
    let mut scanned = Vec::new();
    Reader::new(dir.path(), 0).scan(14, j.end(), |f| scanned.push(f)).unwrap();
    let record = |arrival_ms, len, end| Frame::Record { arrival_ms, len, end };
    assert_eq!(scanned, vec![record(7, 0, 26), record(7, 3, 41), record(8, 1, 54)]);
    let mut out = Vec::new();
    Reader::new(dir.path(), 0).copy_range(14, 54, &mut out).unwrap();
    assert_eq!(out, b"xyzq");
}

#[test]
fn marks_say_how_far_a_source_reached_across_reopens_and_are_not_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = open(dir.path());
    j.append(at(1, &[b"a"]).into_iter(), Some(Mark { source: "in", position: 40 })).unwrap();
    j.append(std::iter::empty(), Some(Mark { source: "in", position: 90 })).unwrap();
    j.append(at(2, &[b"b"]).into_iter(), Some(Mark { source: "shard-0", position: 7 })).unwrap();
    assert_eq!((j.absorbed("in"), j.absorbed("shard-0"), j.absorbed("x")), (Some(90), Some(7), None));
    let end = j.end();
    drop(j);
    let j = open(dir.path());
    assert_eq!((j.end(), j.absorbed("in"), j.absorbed("shard-0")), (end, Some(90), Some(7)));
    let data: Vec<Vec<u8>> = records(dir.path(), 0, end).into_iter().map(|r| r.1).collect();
    assert_eq!(data, [b"a".to_vec(), b"b".to_vec()]);
    // Marks before `from` come from the progress's copy.
    let mut kept = BTreeMap::new();
    kept.insert("in".to_string(), 90);
    let j = Journal::open(dir.path(), Durability::Process, end, kept).unwrap();
    assert_eq!((j.absorbed("in"), j.absorbed("shard-0")), (Some(90), None));
}

#[test]
fn a_failed_or_panicking_append_leaves_nothing_and_the_next_one_follows_the_last_batch() {
    let dir = tempfile::tempdir().unwrap();
    let scope = dir.path().to_string_lossy().into_owned();
    let mut j = open(dir.path());
    j.append(at(1, &[b"one"]).into_iter(), None).unwrap();
    {
        let _sync = faults::arm(faults::JOURNAL_SYNC, &scope, faults::Action::Error, &[1]);
        assert!(j.append(at(2, &[b"two", b"three"]).into_iter(), None).is_err());
    }
    {
        let _panic = faults::arm(faults::JOURNAL_SYNC, &scope, faults::Action::Panic, &[1]);
        let caught =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| j.append(at(3, &[b"four"]).into_iter(), None)));
        assert!(caught.is_err());
    }
    let ends = j.append(at(4, &[b"five"]).into_iter(), None).unwrap();
    assert_eq!(ends, vec![15 + 16]);
    let data: Vec<Vec<u8>> = records(dir.path(), 0, j.end()).into_iter().map(|r| r.1).collect();
    assert_eq!(data, [b"one".to_vec(), b"five".to_vec()]);
}

#[test]
fn a_first_format_journal_is_read_as_written_and_continued_in_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    // Format 1: frames without flags, no journal.json.
    let mut seg = File::create(dir.path().join(segment_name(0))).unwrap();
    for (arrival, data) in [(5i64, &b"old1"[..]), (6, b"old2")] {
        seg.write_all(&(data.len() as u32).to_le_bytes()).unwrap();
        seg.write_all(&arrival.to_le_bytes()).unwrap();
        seg.write_all(data).unwrap();
    }
    drop(seg);
    let mut j = open(dir.path());
    assert_eq!((j.end(), j.v1_before()), (32, 32));
    j.append(at(7, &[b"new"]).into_iter(), None).unwrap();
    assert_eq!(segments(dir.path()).unwrap(), vec![0, 32]);
    let v1 = j.v1_before();
    drop(j);
    let j = open(dir.path());
    assert_eq!(j.v1_before(), v1, "kept in journal.json");
    let back: Vec<(i64, Vec<u8>)> = Reader::new(dir.path(), v1).read_range(0, j.end()).unwrap();
    assert_eq!(back, vec![(5, b"old1".to_vec()), (6, b"old2".to_vec()), (7, b"new".to_vec())]);
}

#[test]
fn a_batch_of_more_frames_than_one_vectored_write_takes_is_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = open(dir.path());
    let records: Vec<Vec<u8>> = (0..3000u32).map(|i| i.to_le_bytes().repeat(1 + (i % 5) as usize)).collect();
    j.append(records.iter().map(|r| (3, r.as_slice())), None).unwrap();
    let back: Vec<Vec<u8>> = self::records(dir.path(), 0, j.end()).into_iter().map(|r| r.1).collect();
    assert_eq!(back, records);
}

#[test]
fn ranges_are_copied_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = open(dir.path());
    let big = vec![7u8; SEGMENT_BYTES as usize];
    let first = j.append([(1, big.as_slice())].into_iter(), None).unwrap();
    let second = j.append([(2, &b"tail"[..])].into_iter(), None).unwrap();
    assert_eq!(segments(dir.path()).unwrap().len(), 2, "the second append starts a new segment");
    let reader = Reader::new(dir.path(), 0);
    // Not a frame boundary: the "header" there is record bytes, and the copy fails instead of inventing data.
    reader.copy_range(first[0] - FRAME_HEADER - 10, second[0], &mut Vec::new()).unwrap_err();
    let mut out = Vec::new();
    reader.copy_range(0, second[0], &mut out).unwrap();
    assert_eq!(out.len(), big.len() + 4);
    assert!(out.ends_with(b"tail"));
    assert!(reader.copy_range(second[0], second[0] + 100, &mut Vec::new()).is_err(), "past the end");
}

#[test]
fn progress_round_trips_and_reads_the_first_format() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(read_progress(dir.path()).unwrap(), Progress::default());
    let mut p = Progress {
        offset: 5,
        pending: Some(Pending { end: 9, bucket: "b".into(), key: "k".into(), also: Some("e".into()) }),
        absorbed: BTreeMap::new(),
    };
    p.absorbed.insert("in".into(), 3);
    write_progress(dir.path(), &p, Durability::Process).unwrap();
    assert_eq!(read_progress(dir.path()).unwrap(), p);
    std::fs::write(dir.path().join("delivered.json"), r#"{"offset":7,"pending":{"end":9,"bucket":"b","key":"k"}}"#)
        .unwrap();
    let old = read_progress(dir.path()).unwrap();
    assert_eq!((old.offset, old.pending.unwrap().also, old.absorbed.len()), (7, None, 0));
}
