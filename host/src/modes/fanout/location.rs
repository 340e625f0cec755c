//! Where a planned export is, as a worker is told: a plan file, or an export's location.

use super::{ExportPlan, PLAN_VERSION};
use crate::error::ExportError;
use crate::io::destination::Target;
use crate::model::Field;
use crate::state::checkpoint::RunState;

/// Where a planned export is: the text of `--plan`, a plan file or an export's location, and
/// what the worker may take as given about it.
///
/// Given only a location, a worker trusts the export's saved state, as `--resume` does; given
/// the plan file (or `--s3-bucket-owner`), it checks that state against the plan, so that a
/// state changed since cannot point it at another table, owner or key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanLocation {
    pub target: Target,
    pub export_id: String,
    /// The plan file's contents, when `--plan` named one.
    pub plan: Option<ExportPlan>,
    /// The account that must own the bucket (`--s3-bucket-owner`, else the plan file's).
    pub expected_owner: Option<String>,
}

impl PlanLocation {
    /// `text` names a file holding an [`ExportPlan`] when one exists there; otherwise it is an
    /// export's location (`…/AWSDynamoDB/<export id>`).
    pub fn parse(text: &str) -> Result<Self, ExportError> {
        let invalid = |message: String| ExportError::InvalidArgument { field: Field::Plan, message };
        let (location, plan) = match std::fs::read(text) {
            Ok(bytes) => {
                let plan: ExportPlan = serde_json::from_slice(&bytes)
                    .map_err(|e| invalid(format!("{text} is not a plan written by `ddb-export plan`: {e}")))?;
                if plan.plan_version != PLAN_VERSION {
                    return Err(invalid(format!("{text} has plan version {}, not {PLAN_VERSION}", plan.plan_version)));
                }
                (plan.export_location.clone(), Some(plan))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (text.to_string(), None),
            Err(_) if std::path::Path::new(text).is_dir() => (text.to_string(), None),
            Err(e) => return Err(invalid(format!("cannot read {text}: {e}"))),
        };
        match Target::parse_export_location(&location)? {
            (target, Some(export_id)) => {
                if let Some(plan) = &plan
                    && plan.export_id != export_id
                {
                    return Err(invalid(format!("{text} names export {} at {location}", plan.export_id)));
                }
                let expected_owner = plan.as_ref().and_then(|p| p.s3_bucket_owner.clone());
                Ok(Self { target, export_id, plan, expected_owner })
            }
            (_, None) => Err(invalid(format!(
                "{location:?} is neither a plan file nor an export's location (…/AWSDynamoDB/<export id>)"
            ))),
        }
    }

    /// Requires the bucket to be owned by `account` (`--s3-bucket-owner`).
    pub fn with_expected_owner(self, account: Option<String>) -> Self {
        match account {
            Some(account) => Self { expected_owner: Some(account), ..self },
            None => self,
        }
    }

    /// What the saved state says must agree with what the worker was given.
    pub(super) fn check(&self, state: &RunState) -> Result<(), String> {
        let snapshot = &state.snapshot;
        if let Some(owner) = &self.expected_owner
            && snapshot.s3_bucket_owner.as_ref() != Some(owner)
        {
            return Err(format!(
                "it was planned with {} {}, not {owner:?}",
                Field::S3BucketOwner,
                snapshot.s3_bucket_owner.as_deref().map_or("(none)".into(), |o| format!("{o:?}"))
            ));
        }
        let Some(plan) = &self.plan else { return Ok(()) };
        let pinned = [
            ("table", plan.table_arn == snapshot.table_arn),
            ("export ARN", plan.export_arn == snapshot.export_arn),
            ("bucket owner", plan.s3_bucket_owner == snapshot.s3_bucket_owner),
            ("KMS key", plan.s3_sse_kms_key_id == snapshot.s3_sse_kms_key_id),
            ("shards", plan.shards == state.plan.shards.iter().map(|s| s.id).collect::<Vec<_>>()),
        ];
        match pinned.iter().find(|(_, same)| !same) {
            Some((what, _)) => Err(format!("its {what} is not the plan file's")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_named_by_its_file_or_by_the_export_s_location() {
        let id = "01700000000000-0a1b2c3d";
        let at = PlanLocation::parse(&format!("s3://bucket/pre/AWSDynamoDB/{id}")).unwrap();
        assert_eq!(
            at,
            PlanLocation {
                target: Target::S3 { bucket: "bucket".into(), prefix: Some("pre".into()) },
                export_id: id.into(),
                plan: None,
                expected_owner: None,
            }
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plan.json");
        let plan = ExportPlan {
            plan_version: PLAN_VERSION,
            export_arn: format!("arn:aws:dynamodb:us-east-1:123456789012:table/t/export/{id}"),
            export_id: id.into(),
            export_location: format!("s3://bucket/AWSDynamoDB/{id}"),
            table_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/t".into(),
            s3_bucket_owner: Some("123456789012".into()),
            s3_sse_kms_key_id: None,
            shards: vec![0, 1],
            export_status: "IN_PROGRESS".into(),
        };
        std::fs::write(&file, serde_json::to_vec(&plan).unwrap()).unwrap();
        let from_file = PlanLocation::parse(file.to_str().unwrap()).unwrap();
        assert_eq!(from_file.export_id, id);
        assert_eq!(from_file.target, Target::S3 { bucket: "bucket".into(), prefix: None });
        assert_eq!(from_file.expected_owner.as_deref(), Some("123456789012"));
        let other = from_file.clone().with_expected_owner(Some("210987654321".into()));
        assert_eq!(other.expected_owner.as_deref(), Some("210987654321"));

        let wrong_version = ExportPlan { plan_version: 9, ..plan };
        std::fs::write(&file, serde_json::to_vec(&wrong_version).unwrap()).unwrap();
        let refusals = [
            PlanLocation::parse(file.to_str().unwrap()),
            PlanLocation::parse("s3://bucket/pre"),
            PlanLocation::parse(dir.path().to_str().unwrap()),
        ];
        for refusal in refusals {
            match refusal {
                Err(ExportError::InvalidArgument { field: Field::Plan, .. }) => {}
                other => panic!("not refused for its plan location: {other:?}"),
            }
        }
        std::fs::write(&file, b"{not json").unwrap();
        assert!(PlanLocation::parse(file.to_str().unwrap()).unwrap_err().to_string().contains("is not a plan"));
    }
}
