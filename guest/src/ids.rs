//! Identifiers in AWS's formats, derived deterministically from their inputs.
//!
//! AWS draws export ids and data file names at random. Deriving them from a hash of what
//! identifies the export instead keeps their shape while letting a resumed run or a fan-out
//! worker recompute every name without coordination.

use md5::{Digest, Md5};
use uuid::Uuid;

/// Namespace of the UUIDs ddb-export derives from table ARNs (a fixed, random v4 UUID).
const TABLE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1e_2d4c_9b3a_4e57_8c21_d0a9_e3f4_b5c6);

/// MD5 over the parts, with a separator byte that cannot occur in them (`\0`).
fn digest(parts: &[&[u8]]) -> [u8; 16] {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(part);
        md5.update([0u8]);
    }
    md5.finalize().into()
}

/// `<14-digit zero-padded epoch ms>-<8 lowercase hex>`, e.g. `01693467621041-a1b2c3d4`.
pub fn export_id(start_time_ms: u64, client_token: &str, table_arn: &str) -> String {
    let hash = digest(&[client_token.as_bytes(), table_arn.as_bytes(), &start_time_ms.to_be_bytes()]);
    format!("{start_time_ms:014}-{:08x}", u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]))
}

/// Data file names are shared with plugins, so they live in `ddb-export-data-files`.
pub use ddb_export_data_files::data_file_name;

/// The server's `TableId` when it is a UUID, or a UUID derived from the table ARN, so every
/// export of one table agrees. (Stand-ins report none, or a malformed one: dynalite's lacks
/// four hex digits.)
pub fn table_id(server_table_id: Option<&str>, table_arn: &str) -> String {
    match server_table_id {
        Some(id) if id.len() == 36 && Uuid::try_parse(id).is_ok() => id.to_ascii_lowercase(),
        _ => Uuid::new_v5(&TABLE_ID_NAMESPACE, table_arn.as_bytes()).to_string(),
    }
}

/// The server's table ARN when it is well formed
/// (`arn:<partition>:dynamodb:<region>:<account>:table/<table-name>`), or one built from the
/// region with the placeholder account `000000000000`.
pub fn table_arn(server_arn: &str, table_name: &str, region: &str) -> String {
    if is_well_formed_table_arn(server_arn, table_name) {
        server_arn.to_string()
    } else {
        format!("arn:aws:dynamodb:{region}:000000000000:table/{table_name}")
    }
}

fn is_well_formed_table_arn(arn: &str, table_name: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    *prefix == "arn"
        && !partition.is_empty()
        && *service == "dynamodb"
        && !region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && resource.strip_prefix("table/") == Some(table_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_id_has_aws_shape_and_is_deterministic() {
        let id = export_id(1_693_467_621_041, "token", "arn:aws:dynamodb:us-east-1:123456789012:table/t");
        assert_eq!(id.len(), 23);
        assert!(id.starts_with("01693467621041-"));
        assert!(id[15..].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(id, export_id(1_693_467_621_041, "token", "arn:aws:dynamodb:us-east-1:123456789012:table/t"));
        assert_ne!(id, export_id(1_693_467_621_041, "other", "arn:aws:dynamodb:us-east-1:123456789012:table/t"));
    }

    #[test]
    fn table_arn_is_repaired_only_when_malformed() {
        let good = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders";
        assert_eq!(table_arn(good, "orders", "us-east-1"), good);
        assert_eq!(table_arn("orders", "orders", "us-east-1"), "arn:aws:dynamodb:us-east-1:000000000000:table/orders");
        assert_ne!(table_arn(good, "other", "us-east-1"), good);
    }

    #[test]
    fn table_id_prefers_the_server_and_is_stable_otherwise() {
        let server = "3f9c1a2e-0000-4000-8000-000000000001";
        assert_eq!(table_id(Some(server), "arn"), server);
        let truncated = "d0a8f9fd-90fd-4734-9738-c67284e6";
        assert_ne!(table_id(Some(truncated), "arn"), truncated);
        let derived = table_id(None, "arn:aws:dynamodb:us-east-1:000000000000:table/t");
        assert_eq!(Uuid::parse_str(&derived).map(|u| u.get_version_num()), Ok(5));
        assert_eq!(derived, table_id(Some(""), "arn:aws:dynamodb:us-east-1:000000000000:table/t"));
    }
}
