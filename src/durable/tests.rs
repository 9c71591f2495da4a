//! The reopen path at more than one parse chunk, ids out of order, and a rule that no longer
//! parses deep in the file.

use super::format::Record;
use super::*;
use crate::registry::Scratch;
use crate::Message;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir()
            .join(format!("streamtrack-durable-unit-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// (id, subscriber, canonical text, tag, name) of every rule, ascending by id.
type Seen = Vec<(u64, String, String, Option<String>, Option<String>)>;

fn seen(reg: &DurableRegistry) -> Seen {
    reg.registry()
        .snapshot()
        .rules()
        .iter()
        .map(|i| {
            (
                i.id.as_u64(),
                i.subscriber.to_string(),
                i.rule.to_string(),
                i.tag.as_deref().map(String::from),
                reg.name_of(i.id),
            )
        })
        .collect()
}

fn write_log(dir: &Path, records: &[Record<&str>]) {
    let mut buf = Vec::new();
    for r in records {
        r.push_framed(&mut buf);
    }
    fs::write(log_path(dir, 0), buf).unwrap();
}

fn sub(id: u64, subscriber: &'static str, text: &'static str) -> Record<&'static str> {
    Record::Subscribe { id, subscriber, tag: None, name: None, dialect: Dialect::Rule, text }
}

#[test]
fn many_chunks_reopen_the_same_from_the_log_and_from_a_snapshot() {
    let dir = TempDir::new("chunks");
    let opts = || {
        OpenOptions::new()
            .snapshot_min_records(usize::MAX)
            .durability(Durability::Group { max_delay: Duration::from_millis(20) })
    };
    let (reg, _) = DurableRegistry::open(&dir.0, opts()).unwrap();
    // Three parse chunks and a bit, in two batches and one by one.
    let n = PARSE_CHUNK * 3 + 100;
    let batch = |from: usize, to: usize| -> Vec<NewRule> {
        (from..to)
            .map(|i| NewRule {
                subscriber: format!("s{}", i % 97),
                rule: Rule::parse(&format!("w{i} OR \"x{} y\" -z{}", i % 13, i % 5)).unwrap(),
                tag: (i % 3 == 0).then(|| format!("t{i}")),
            })
            .collect()
    };
    let ids: Vec<RuleId> = reg
        .subscribe_all(batch(0, n / 2))
        .unwrap()
        .value
        .into_iter()
        .chain(reg.subscribe_all(batch(n / 2, n - 10)).unwrap().value)
        .map(|r| r.unwrap())
        .collect();
    for i in n - 10..n {
        let r = Rule::parse(&format!("w{i}")).unwrap();
        reg.subscribe_named(&format!("s{}", i % 97), r, None, Some(format!("n{i}"))).unwrap();
    }
    for id in ids.iter().step_by(7) {
        reg.unsubscribe(*id).unwrap();
    }
    for id in ids.iter().skip(3).step_by(11) {
        let _ = reg.replace(*id, Rule::parse("replaced -gone").unwrap(), Some("r".into()));
    }
    let before = seen(&reg);
    assert!(before.len() > PARSE_CHUNK * 2);
    drop(reg);
    for from in ["log", "snapshot"] {
        let (reg, report) = DurableRegistry::open(&dir.0, opts()).unwrap();
        assert_eq!(report.rules, before.len(), "{from}");
        assert_eq!(seen(&reg), before, "{from}");
        // The duplicate keys came from the stored texts: an equal rule written another way
        // is still refused, for its subscriber only.
        let (id, subscriber, text, ..) = &before[5];
        let spaced = format!("  {text}  ");
        match reg.subscribe(subscriber, Rule::parse(&spaced).unwrap(), None) {
            Err(DurableError::Registry(RegistryError::Duplicate { existing })) => {
                assert_eq!(existing.as_u64(), *id, "{from}")
            }
            other => panic!("{from}: {other:?}"),
        }
        let fresh = reg.subscribe("nobody-yet", Rule::parse(text).unwrap(), None).unwrap().value;
        assert!(fresh.as_u64() > before.last().unwrap().0, "{from}: ids are not reused");
        reg.unsubscribe(fresh).unwrap();
        // The restored rules match.
        let msg = Message::new("m", format!("w{}", before[1].0 - 1));
        let found = reg.registry().snapshot().find(&msg, &mut Scratch::new()).len();
        assert!(found >= 1, "{from}");
        reg.compact().unwrap();
        drop(reg);
    }
}

#[test]
fn ids_out_of_order_in_a_log_are_replayed_by_id() {
    let dir = TempDir::new("order");
    write_log(
        &dir.0,
        &[
            sub(9, "a", "nine"),
            sub(4, "b", "four"),
            sub(7, "a", "seven"),
            Record::Replace { id: 9, tag: Some("t"), dialect: Dialect::Rule, text: "ninety" },
            Record::Unsubscribe { id: 4 },
            sub(2, "c", "two"),
        ],
    );
    let (reg, report) = DurableRegistry::open(&dir.0, OpenOptions::new()).unwrap();
    assert_eq!(report.log_records, 6);
    let got: Vec<(u64, String, Option<String>)> =
        seen(&reg).into_iter().map(|(id, _, text, tag, _)| (id, text, tag)).collect();
    assert_eq!(
        got,
        [
            (2, "two".into(), None),
            (7, "seven".into(), None),
            (9, "ninety".into(), Some("t".into()))
        ]
    );
    drop(reg);
    // A rule added twice is refused, in order or not.
    for records in [
        vec![sub(3, "a", "x"), sub(5, "a", "y"), sub(3, "b", "z")],
        vec![sub(3, "a", "x"), sub(3, "b", "z")],
    ] {
        write_log(&dir.0, &records);
        match DurableRegistry::open(&dir.0, OpenOptions::new()) {
            Err(DurableError::Inconsistent { reason, .. }) => {
                assert!(reason.contains("rule 3 added twice"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_rule_text_that_no_longer_parses_deep_in_the_log_is_named() {
    let dir = TempDir::new("unparsable");
    let texts: Vec<String> = (0..PARSE_CHUNK as u64 * 2 + 5).map(|i| format!("w{i}")).collect();
    let mut records: Vec<Record<&str>> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Record::Subscribe {
            id: i as u64 + 1,
            subscriber: "s",
            tag: None,
            name: None,
            dialect: Dialect::Rule,
            text: t,
        })
        .collect();
    let bad = PARSE_CHUNK as u64 + 17;
    if let Record::Subscribe { text, .. } = &mut records[bad as usize - 1] {
        *text = "a AND (";
    }
    write_log(&dir.0, &records);
    match DurableRegistry::open(&dir.0, OpenOptions::new()) {
        Err(DurableError::Inconsistent { reason, .. }) => {
            assert!(reason.starts_with(&format!("rule {bad} (\"a AND (\")")), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_phases_add_up_to_at_most_the_open() {
    let dir = TempDir::new("phases");
    let (reg, _) = DurableRegistry::open(&dir.0, OpenOptions::new()).unwrap();
    for i in 0..50 {
        reg.subscribe("s", Rule::parse(&format!("w{i}")).unwrap(), None).unwrap();
    }
    drop(reg);
    let t = Instant::now();
    let (_reg, report) = DurableRegistry::open(&dir.0, OpenOptions::new()).unwrap();
    let wall = t.elapsed();
    assert!(report.phases.total() <= wall, "{:?} > {wall:?}", report.phases);
    assert!(report.phases.read > Duration::ZERO && report.phases.compile > Duration::ZERO);
}

#[test]
fn names_given_in_a_bulk_subscribe_are_kept_and_reopened() {
    let dir = TempDir::new("bulk-names");
    let rule = |i: usize| NewRule {
        subscriber: format!("s{i}"),
        rule: Rule::parse(&format!("w{i}")).unwrap(),
        tag: None,
    };
    let (reg, _) = DurableRegistry::open(&dir.0, OpenOptions::new()).unwrap();
    let added = reg
        .subscribe_all_named(vec![(rule(0), Some("zero".into())), (rule(1), None)])
        .unwrap()
        .value;
    let ids: Vec<RuleId> = added.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(reg.name_of(ids[0]).as_deref(), Some("zero"));
    assert_eq!(reg.name_of(ids[1]), None);
    let before = seen(&reg);
    drop(reg);
    let (reg, _) = DurableRegistry::open(&dir.0, OpenOptions::new()).unwrap();
    assert_eq!(seen(&reg), before);
    assert_eq!(reg.name_of(ids[0]).as_deref(), Some("zero"));
}

#[test]
fn rules_removed_at_once_stay_removed_after_a_reopen() {
    let dir = TempDir::new("bulk-remove");
    let (reg, _) = DurableRegistry::open(&dir.0, OpenOptions::new()).unwrap();
    let rules = (0..5)
        .map(|i| {
            let r = NewRule {
                subscriber: format!("s{i}"),
                rule: Rule::parse(&format!("w{i}")).unwrap(),
                tag: None,
            };
            (r, Some(format!("n{i}")))
        })
        .collect();
    let ids: Vec<RuleId> =
        reg.subscribe_all_named(rules).unwrap().value.into_iter().map(|r| r.unwrap()).collect();
    let gone = [ids[1], ids[3], ids[1]];
    let results = reg.unsubscribe_all(&gone).unwrap().value;
    assert!(results[0].is_ok() && results[1].is_ok());
    assert!(results[2].is_err(), "a rule removed twice: the second is an error");
    assert_eq!(reg.name_of(ids[1]), None);
    let before = seen(&reg);
    assert_eq!(before.len(), 3);
    drop(reg);
    let (reg, _) = DurableRegistry::open(&dir.0, OpenOptions::new()).unwrap();
    assert_eq!(seen(&reg), before);
}
