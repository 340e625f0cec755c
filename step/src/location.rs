//! Where a planned export is: `s3://bucket/prefix/AWSDynamoDB/<export id>`, as `ddb-export
//! plan` prints it (`exportLocation`).

use ddb_export_model::layout;

use crate::Error;

/// A planned export's bucket, root and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportLocation {
    pub bucket: String,
    /// `<prefix>/AWSDynamoDB/<export id>`: what the export's keys start with.
    pub root: String,
    pub export_id: String,
}

impl ExportLocation {
    /// Parses an export's location. Only S3: a component reaches no files.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let refused = |why: &str| {
            Error::PermanentRefused(format!(
                "export-location {text:?} {why}: give the `exportLocation` `ddb-export plan` printed, \
                 s3://<bucket>/<prefix>/AWSDynamoDB/<export id>"
            ))
        };
        let Some(rest) = text.strip_prefix("s3://") else { return Err(refused("is not an s3:// location")) };
        let rest = rest.trim_end_matches('/');
        let Some((bucket, root)) = rest.split_once('/') else { return Err(refused("names no export")) };
        let Some((head, export_id)) = root.rsplit_once('/') else { return Err(refused("names no export")) };
        if !(head == "AWSDynamoDB" || head.ends_with("/AWSDynamoDB")) || !layout::is_export_id(export_id) {
            return Err(refused("does not end with AWSDynamoDB/<export id>"));
        }
        if bucket.is_empty() {
            return Err(refused("names no bucket"));
        }
        let prefix = head.strip_suffix("AWSDynamoDB").map(|p| p.trim_end_matches('/')).filter(|p| !p.is_empty());
        Ok(Self {
            bucket: bucket.to_string(),
            root: layout::export_root(prefix, export_id),
            export_id: export_id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01700000000000-0a1b2c3d";

    #[test]
    fn a_location_gives_the_bucket_and_the_export_root() {
        let at = ExportLocation::parse(&format!("s3://bucket/pre/fix/AWSDynamoDB/{ID}/")).unwrap();
        assert_eq!(at.bucket, "bucket");
        assert_eq!(at.root, format!("pre/fix/AWSDynamoDB/{ID}"));
        assert_eq!(at.export_id, ID);
        let at = ExportLocation::parse(&format!("s3://bucket/AWSDynamoDB/{ID}")).unwrap();
        assert_eq!(at.root, format!("AWSDynamoDB/{ID}"));
    }

    #[test]
    fn anything_else_is_refused_by_name() {
        for bad in [
            format!("/tmp/AWSDynamoDB/{ID}"),
            "s3://bucket".to_string(),
            "s3://bucket/prefix".to_string(),
            format!("s3://bucket/NotAWS/{ID}"),
            "s3://bucket/AWSDynamoDB/not-an-id".to_string(),
            format!("s3:///AWSDynamoDB/{ID}"),
        ] {
            match ExportLocation::parse(&bad) {
                Err(Error::PermanentRefused(message)) => assert!(message.contains(&format!("{bad:?}")), "{message}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
