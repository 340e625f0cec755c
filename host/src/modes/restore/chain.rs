//! Which exports a restore reads, in which order: each `--from` names one export, or a
//! destination whose exports are chained (its latest full export, then the incremental exports
//! that continue it); and the rule a chain must keep: one full export first, then incremental
//! exports of the same table, each window starting exactly where the one before it ended.

use crate::error::ExportError;
use crate::io::destination::{Destination, Target};
use crate::lifecycle::verify::VerifiedExport;
use crate::model::Field;
use crate::model::layout;
use crate::model::summary::{self, ManifestSummary};
use crate::state::catalog;
use crate::state::description::ExportStatus;

/// One export of the chain, found.
#[derive(Debug, Clone)]
pub struct Link {
    pub destination: Destination,
    pub export_id: String,
    /// Where it is, in words (`s3://…/AWSDynamoDB/<id>` or a path).
    pub location: String,
}

/// The exports `from` names, in order.
pub async fn locate(from: &[String]) -> Result<Vec<Link>, ExportError> {
    let mut links = Vec::new();
    for text in from {
        let (target, id) = Target::parse_export_location(text).map_err(|e| match e {
            ExportError::InvalidArgument { message, .. } => {
                ExportError::InvalidArgument { field: Field::RestoreFrom, message: format!("{text}: {message}") }
            }
            other => other,
        })?;
        let destination = Destination::open_for_reading(&target).await?;
        match id {
            Some(export_id) => links.push(link(destination, export_id)),
            None => links.extend(chain_under(destination, text).await?),
        }
    }
    Ok(links)
}

fn link(destination: Destination, export_id: String) -> Link {
    let location = destination.locate(&layout::export_root(destination.prefix().as_deref(), &export_id));
    Link { destination, export_id, location }
}

/// The completed exports under a destination, chained: the latest full export, then the
/// incremental exports of its table whose windows start at or after its export time.
async fn chain_under(destination: Destination, text: &str) -> Result<Vec<Link>, ExportError> {
    let mut found: Vec<(String, ManifestSummary)> = Vec::new();
    for export in catalog::list(&destination).await? {
        if export.export_status != ExportStatus::Completed {
            continue;
        }
        let Some((_, id)) = export.export_arn.rsplit_once("/export/") else { continue };
        let keys = layout::export_keys(destination.prefix().as_deref(), id, false);
        let Some(bytes) = destination.get(&keys.manifest_summary).await? else { continue };
        if let Ok(summary) = ManifestSummary::parse(&bytes) {
            found.push((id.to_string(), summary));
        }
    }
    let full = found
        .iter()
        .filter(|(_, s)| !s.is_incremental())
        .max_by_key(|(_, s)| s.export_time.as_deref().and_then(summary::epoch_ms).unwrap_or(0))
        .cloned()
        .ok_or_else(|| ExportError::InvalidArgument {
            field: Field::RestoreFrom,
            message: format!("{text} holds no completed full export to restore"),
        })?;
    let start = full.1.export_time.as_deref().and_then(summary::epoch_ms).unwrap_or(0);
    let mut incrementals: Vec<(u64, String)> = found
        .iter()
        .filter(|(_, s)| s.is_incremental() && s.table_arn == full.1.table_arn)
        .filter_map(|(id, s)| {
            let from = s.export_from_time.as_deref().and_then(summary::epoch_ms)?;
            let to = s.export_to_time.as_deref().and_then(summary::epoch_ms)?;
            (to > start).then_some((from, id.clone()))
        })
        .collect();
    incrementals.sort();
    let mut links = vec![link(destination.clone(), full.0)];
    links.extend(incrementals.into_iter().map(|(_, id)| link(destination.clone(), id)));
    Ok(links)
}

/// A verified export's place in time: a full export's point, an incremental one's window.
fn span(export: &VerifiedExport) -> Result<(u64, u64), String> {
    let time = |name: &str, value: &Option<String>| {
        value.as_deref().and_then(summary::epoch_ms).ok_or_else(|| format!("its summary has no time {name}"))
    };
    let s = &export.summary;
    if export.incremental() {
        Ok((time("exportFromTime", &s.export_from_time)?, time("exportToTime", &s.export_to_time)?))
    } else {
        let at = time("exportTime", &s.export_time)?;
        Ok((at, at))
    }
}

/// Refuses a chain that does not restore one table to one moment: the first export must be a
/// full one and the others incremental, all of one table, each starting where the one before
/// it ended (a gap would lose changes, an overlap is a mistake about which exports these are).
pub fn check(chain: &[(&str, &VerifiedExport)]) -> Result<(), ExportError> {
    let refuse = |message: String| Err(ExportError::InvalidArgument { field: Field::RestoreFrom, message });
    let Some(((first_link, first), rest)) = chain.split_first() else {
        return refuse("names no export".into());
    };
    if first.incremental() {
        return refuse(format!(
            "{first_link} is an incremental export: a restore starts from a full export (give it first)"
        ));
    }
    let (_, mut end) = span(first).map_err(|m| invalid(first_link, m))?;
    let mut before: &str = first_link;
    for (link, export) in rest {
        if !export.incremental() {
            return refuse(format!(
                "{link} is a full export: only the first export of a chain is (the others continue it)"
            ));
        }
        if export.summary.table_arn != first.summary.table_arn {
            return refuse(format!(
                "{link} is an export of {}, but {first_link} is one of {}",
                export.summary.table_arn.as_deref().unwrap_or("an unnamed table"),
                first.summary.table_arn.as_deref().unwrap_or("an unnamed table")
            ));
        }
        let (from, to) = span(export).map_err(|m| invalid(link, m))?;
        let at = |ms: u64| summary::timestamp(ms);
        if from > end {
            return refuse(format!(
                "a gap: {before} ends at {}, but {link} starts at {}; the changes between are in neither",
                at(end),
                at(from)
            ));
        }
        if from < end {
            return refuse(format!(
                "an overlap: {before} ends at {}, but {link} starts earlier, at {}",
                at(end),
                at(from)
            ));
        }
        end = to;
        before = link;
    }
    Ok(())
}

fn invalid(location: &str, message: String) -> ExportError {
    ExportError::InvalidArgument { field: Field::RestoreFrom, message: format!("{location}: {message}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(incremental: bool, times: (&str, &str), table: &str) -> VerifiedExport {
        let summary = ManifestSummary {
            table_arn: Some(table.into()),
            export_time: (!incremental).then(|| times.0.to_string()),
            export_from_time: incremental.then(|| times.0.to_string()),
            export_to_time: incremental.then(|| times.1.to_string()),
            export_type: incremental.then(|| summary::INCREMENTAL_EXPORT.to_string()),
            ..ManifestSummary::default()
        };
        VerifiedExport { summary, format: None, files: Vec::new() }
    }

    fn message(result: Result<(), ExportError>) -> String {
        match result {
            Err(ExportError::InvalidArgument { field: Field::RestoreFrom, message }) => message,
            other => panic!("not a refusal of the chain: {other:?}"),
        }
    }

    #[test]
    fn a_chain_continues_its_full_export_without_gaps_or_overlaps() {
        let (a, b, c, d) = (
            "2024-01-01T00:00:00.000Z",
            "2024-01-01T01:00:00.000Z",
            "2024-01-01T02:00:00.000Z",
            "2024-01-01T03:00:00.000Z",
        );
        let full = export(false, (a, a), "t");
        let first = export(true, (a, b), "t");
        let second = export(true, (b, c), "t");
        let (l1, l2, l3) = ("full", "inc1", "inc2");
        assert!(check(&[(l1, &full), (l2, &first), (l3, &second)]).is_ok());
        assert!(check(&[(l1, &full)]).is_ok());

        let late = export(true, (c, d), "t");
        let gap = message(check(&[(l1, &full), (l2, &first), (l3, &late)]));
        assert!(gap.starts_with("a gap: inc1 ends at 2024-01-01T01:00:00.000Z, but inc2 starts"), "{gap}");
        let early = export(true, (a, c), "t");
        let overlap = message(check(&[(l1, &full), (l2, &first), (l3, &early)]));
        assert!(overlap.starts_with("an overlap: inc1 ends at"), "{overlap}");
        let other_table = export(true, (a, b), "u");
        assert!(message(check(&[(l1, &full), (l2, &other_table)])).contains("is an export of u"));
        assert!(message(check(&[(l2, &first)])).contains("starts from a full export"));
        assert!(message(check(&[(l1, &full), (l2, &full)])).contains("only the first export"));
    }
}
