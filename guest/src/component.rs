//! The WIT exports, implemented by the plain-Rust modules of this crate.

use std::cell::RefCell;

use crate::bindings::ddb_export::core::logging::{self, Level};
use crate::bindings::exports::ddb_export::core::{incremental, restore, rewrite, shard_plan, snapshot, verify, write};
use crate::encoder::ShardEncoder;
use crate::wit::{
    EncoderOptions, ExportSnapshot, ExportTotals, ManifestEntry, Object, Output, Plan, PlanRequest, TableDescription,
};
use crate::{manifest, plan};

/// The component: one value implements every exported interface.
pub struct Component;

impl snapshot::Guest for Component {
    fn create(table: TableDescription, request: snapshot::ExportRequest) -> Result<ExportSnapshot, snapshot::Error> {
        crate::snapshot::create(table, request)
    }
}

impl shard_plan::Guest for Component {
    fn create(table: TableDescription, request: PlanRequest) -> Result<Plan, shard_plan::Error> {
        let plan = plan::create(&table, &request)?;
        logging::log(Level::Debug, &format!("shard plan: {}", plan.rationale));
        Ok(plan)
    }
}

impl write::Guest for Component {
    type Encoder = EncoderResource;

    fn manifests(
        snapshot: ExportSnapshot,
        files: Vec<ManifestEntry>,
        totals: ExportTotals,
    ) -> Result<Vec<Object>, write::Error> {
        manifest::build(&snapshot, &files, &totals)
    }
}

/// The `encoder` resource. Methods take `&self`, so the state sits in a `RefCell`; a component
/// instance is single-threaded.
pub struct EncoderResource(RefCell<ShardEncoder>);

impl write::GuestEncoder for EncoderResource {
    fn open(snapshot: ExportSnapshot, options: EncoderOptions) -> Result<write::Encoder, write::Error> {
        let encoder = ShardEncoder::open(&snapshot, options)?;
        Ok(write::Encoder::new(EncoderResource(RefCell::new(encoder))))
    }

    fn encode_page(&self, page: Vec<u8>) -> Result<Vec<Output>, write::Error> {
        self.0.borrow_mut().encode_page(&page)
    }

    fn encode_json_page(&self, items: Vec<u8>) -> Result<Vec<Output>, write::Error> {
        self.0.borrow_mut().encode_json_page(&items)
    }

    fn finish(&self) -> Result<Vec<Output>, write::Error> {
        self.0.borrow_mut().finish()
    }
}

impl incremental::Guest for Component {
    type ChangeEncoder = ChangeEncoderResource;
}

/// The `change-encoder` resource.
pub struct ChangeEncoderResource(RefCell<crate::incremental::ChangeEncoder>);

impl incremental::GuestChangeEncoder for ChangeEncoderResource {
    fn open(
        snapshot: ExportSnapshot,
        options: EncoderOptions,
    ) -> Result<incremental::ChangeEncoder, incremental::Error> {
        let encoder = crate::incremental::ChangeEncoder::open(&snapshot, options)?;
        Ok(incremental::ChangeEncoder::new(ChangeEncoderResource(RefCell::new(encoder))))
    }

    fn add_records(&self, records: Vec<u8>) -> Result<(), incremental::Error> {
        self.0.borrow_mut().add_records(&records)
    }

    fn encode_next(&self) -> Result<Vec<Output>, incremental::Error> {
        self.0.borrow_mut().encode_next()
    }
}

impl rewrite::Guest for Component {
    type LineFilter = LineFilterResource;
}

/// The `line-filter` resource.
pub struct LineFilterResource(RefCell<crate::line_filter::LineFilter>);

impl rewrite::GuestLineFilter for LineFilterResource {
    fn new(drop: Vec<u64>, compression_level: u8) -> Self {
        Self(RefCell::new(crate::line_filter::LineFilter::new(drop, compression_level)))
    }

    fn feed(&self, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
        self.0.borrow_mut().feed(&bytes)
    }

    fn finish(&self) -> Result<(Vec<u8>, u64), String> {
        self.0.borrow_mut().finish()
    }
}

impl verify::Guest for Component {
    type DataFileChecker = CheckerResource;

    fn check_manifests(
        summary: Vec<u8>,
        summary_md5: Option<Vec<u8>>,
        files: Vec<u8>,
        files_md5: Option<Vec<u8>>,
    ) -> Result<verify::Manifests, verify::Error> {
        crate::verify::check_manifests(&summary, summary_md5.as_deref(), &files, files_md5.as_deref())
    }
}

/// The `data-file-checker` resource.
pub struct CheckerResource(RefCell<crate::verify::DataFileChecker>);

impl verify::GuestDataFileChecker for CheckerResource {
    fn new(format: crate::wit::ExportFormat, export_type: String, key: Vec<crate::wit::KeyAttribute>) -> Self {
        Self(RefCell::new(crate::verify::DataFileChecker::new(format, &export_type, key)))
    }

    fn feed(&self, bytes: Vec<u8>) -> Vec<u8> {
        self.0.borrow_mut().feed(&bytes)
    }

    fn finish(&self) -> verify::FileReport {
        self.0.borrow_mut().finish()
    }
}

impl restore::Guest for Component {
    type DataFileDecoder = DecoderResource;
}

/// The `data-file-decoder` resource.
pub struct DecoderResource(RefCell<crate::restore::DataFileDecoder>);

impl restore::GuestDataFileDecoder for DecoderResource {
    fn new(format: crate::wit::ExportFormat, export_type: String, key: Vec<crate::wit::KeyAttribute>) -> Self {
        Self(RefCell::new(crate::restore::DataFileDecoder::new(format, &export_type, key)))
    }

    fn feed(&self, bytes: Vec<u8>) -> Result<Vec<restore::WriteBatch>, restore::DecodeError> {
        self.0.borrow_mut().feed(&bytes)
    }

    fn finish(&self) -> Result<Vec<restore::WriteBatch>, restore::DecodeError> {
        self.0.borrow_mut().finish()
    }
}

#[cfg(all(target_arch = "wasm32", feature = "component"))]
crate::bindings::export!(Component with_types_in crate::bindings);
