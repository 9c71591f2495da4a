//! `run --state DIR`: the rules kept in a durable registry (see `streamtrack::durable`), so a
//! later start with the same directory and no `--rules` resumes with them.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::ExitCode;
use streamtrack::registry::{NewRule, Registry, RuleId};
use streamtrack::rule::Dialect;

/// The registry to run, the rules-file id of each rule, and the subscribers in order.
/// Rule ids of the registry -> ids of the rules file (a fast hash: 1M entries at start-up).
pub type IdMap = HashMap<RuleId, String, foldhash::fast::RandomState>;

pub type Loaded = (Registry, IdMap, Vec<String>);

/// Opens the state in `dir`; with `rules`, first makes the stored rules those of the file
/// (rules already stored as the file has them keep their ids; the others are removed or
/// added).
pub fn load(dir: &Path, rules: Option<&Path>, dialect: Dialect) -> Result<Loaded, ExitCode> {
    let durable = crate::serve_cmd::open_state(dir)?;
    if let Some(path) = rules {
        let entries = crate::format::load_rules(path, dialect)?;
        // (name, subscriber, canonical rule, tag) of each stored rule.
        let key = |name: &str, sub: &str, rule: &str, tag: Option<&str>| {
            (name.to_string(), sub.to_string(), rule.to_string(), tag.map(String::from))
        };
        let mut stored: HashMap<_, RuleId> = HashMap::new();
        for info in durable.registry().snapshot().rules() {
            let name = durable.name_of(info.id).unwrap_or_default();
            let k = key(&name, &info.subscriber, &info.rule.to_string(), info.tag.as_deref());
            stored.insert(k, info.id);
        }
        let mut keep = HashSet::new();
        let fail = |e: &dyn std::fmt::Display| {
            eprintln!("error: --state {}: {e}", dir.display());
            ExitCode::from(2)
        };
        let mut added = Vec::new();
        for e in &entries {
            let sub = e.subscriber.clone().unwrap_or_else(|| e.id.clone());
            let k = key(&e.id, &sub, &e.rule.to_string(), e.tag.as_deref());
            match stored.get(&k) {
                Some(&id) => {
                    keep.insert(id);
                }
                None => added.push((e, sub)),
            }
        }
        // One publication and one sync for the removals, one for the additions (one each
        // per rule took minutes for a large file).
        let gone: Vec<(&String, RuleId)> = stored
            .iter()
            .filter(|(_, id)| !keep.contains(*id))
            .map(|(k, &id)| (&k.0, id))
            .collect();
        let ids: Vec<RuleId> = gone.iter().map(|g| g.1).collect();
        let removed = durable.unsubscribe_all(&ids).map_err(|e| fail(&e))?.value;
        for ((name, _), r) in gone.iter().zip(removed) {
            r.map_err(|e| fail(&format!("rule {name:?}: {e}")))?;
        }
        let new = added
            .iter()
            .map(|(e, sub)| {
                let rule =
                    NewRule { subscriber: sub.clone(), rule: e.rule.clone(), tag: e.tag.clone() };
                (rule, Some(e.id.clone()))
            })
            .collect();
        let results = durable.subscribe_all_named(new).map_err(|e| fail(&e))?.value;
        for ((e, _), r) in added.iter().zip(results) {
            if let Err(err) = r {
                eprintln!(
                    "warning: {}: rule {} (id {:?}): {err}; skipped",
                    path.display(),
                    e.line,
                    e.id
                );
            }
        }
    }
    let registry = durable.registry().clone();
    let rules = registry.snapshot().rules();
    if rules.is_empty() {
        eprintln!("error: no rules: --state {} holds none; give --rules FILE", dir.display());
        return Err(ExitCode::from(2));
    }
    let mut ids = IdMap::default();
    let mut subscribers = Vec::new();
    let mut seen = HashSet::new();
    for info in rules {
        if seen.insert(info.subscriber.to_string()) {
            subscribers.push(info.subscriber.to_string());
        }
        ids.insert(info.id, durable.name_of(info.id).unwrap_or_else(|| info.id.to_string()));
    }
    Ok((registry, ids, subscribers))
}
