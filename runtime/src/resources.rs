//! The resources a [`Session`] opens in its component: a shard's encoder, an incremental
//! export's change encoder, the consistent mode's line filter, verify's file checker,
//! restore's file decoder. Each frees its resource when its last output is taken.

use wasmtime::component::ResourceAny;

use ddb_export_model::{
    DecodeError, EncoderEvent, EncoderOptions, ExportFormat, FileReport, KeyAttribute, Snapshot, UnsupportedItem,
    WriteBatch,
};

use crate::{ComponentError, Session, bindings, convert, plugin};

/// The constructors: each opens its resource in the session's store and takes the session.
impl Session {
    /// `rewrite`: a filter that copies a data file without the lines `drop` names.
    pub fn line_filter(mut self, drop: &[u64], compression_level: u8) -> Result<LineFilter, ComponentError> {
        let exports = self.exports.clone();
        let handle = self.call("line-filter.new", |store| {
            exports.ddb_export_core_rewrite().line_filter().call_constructor(store, drop, compression_level)
        })?;
        Ok(LineFilter { session: self, handle })
    }

    /// `verify`: a checker of one data file's lines, living in this session's store.
    /// `key`: the table's key attributes, when known.
    pub fn data_file_checker(
        mut self,
        format: ExportFormat,
        export_type: &str,
        key: &[KeyAttribute],
    ) -> Result<FileChecker, ComponentError> {
        let exports = self.exports.clone();
        let wit_format = convert::format(format);
        let wit_key = convert::key_to_wit(key);
        let handle = self.call("data-file-checker.new", |store| {
            exports.ddb_export_core_verify().data_file_checker().call_constructor(
                store,
                wit_format,
                export_type,
                &wit_key,
            )
        })?;
        Ok(FileChecker { session: self, handle, key_hashes: Vec::new() })
    }

    /// `restore`: a decoder of one data file into write batches, living in this session's
    /// store. `key`: the table's key attributes.
    pub fn data_file_decoder(
        mut self,
        format: ExportFormat,
        export_type: &str,
        key: &[KeyAttribute],
    ) -> Result<FileDecoder, ComponentError> {
        let exports = self.exports.clone();
        let wit_format = convert::format(format);
        let wit_key = convert::key_to_wit(key);
        let handle = self.call("data-file-decoder.new", |store| {
            exports.ddb_export_core_restore().data_file_decoder().call_constructor(
                store,
                wit_format,
                export_type,
                &wit_key,
            )
        })?;
        Ok(FileDecoder { session: self, handle, next_line: 1 })
    }

    /// An incremental export's change encoder, living in this session's store.
    pub fn open_change_encoder(
        mut self,
        snapshot: &Snapshot,
        options: &EncoderOptions,
    ) -> Result<ChangeEncoder, ComponentError> {
        let exports = self.exports.clone();
        let wit_snapshot = convert::snapshot_to_wit(snapshot);
        let wit_options = convert::encoder_options(options);
        let result = self.call("change-encoder.open", |store| {
            exports.ddb_export_core_incremental().change_encoder().call_open(store, &wit_snapshot, wit_options)
        })?;
        let handle = result.map_err(|e| self.refused("change-encoder.open", e))?;
        Ok(ChangeEncoder { session: self, handle: Some(handle) })
    }

    /// Step 3a: the component's own encoder for one shard, living in this session's store.
    pub fn open_encoder(mut self, snapshot: &Snapshot, options: &EncoderOptions) -> Result<Encoder, ComponentError> {
        let exports = self.exports.clone();
        let wit_snapshot = convert::snapshot_to_wit(snapshot);
        let wit_options = convert::encoder_options(options);
        let result = self.call("encoder.open", |store| {
            exports.ddb_export_core_write().encoder().call_open(store, &wit_snapshot, wit_options)
        })?;
        let handle = result.map_err(|e| self.refused("encoder.open", e))?;
        Ok(Encoder { backend: EncoderBackend::Component(self), handle: Some(handle), packed: Vec::new() })
    }
}

/// Copies one data file without some of its lines (see `rewrite` in the WIT).
pub struct LineFilter {
    pub(crate) session: Session,
    pub(crate) handle: ResourceAny,
}

impl LineFilter {
    /// The next bytes of the original; returns the next bytes of the copy.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<u8>, ComponentError> {
        let (exports, handle) = (self.session.exports.clone(), self.handle);
        let result = self.session.call("line-filter.feed", |store| {
            exports.ddb_export_core_rewrite().line_filter().call_feed(store, handle, bytes)
        })?;
        result.map_err(|e| self.session.refused("line-filter.feed", e))
    }

    /// The copy's last bytes and the number of lines it kept; frees the resource.
    pub fn finish(mut self) -> Result<(Vec<u8>, u64), ComponentError> {
        let (exports, handle) = (self.session.exports.clone(), self.handle);
        let result = self.session.call("line-filter.finish", |store| {
            exports.ddb_export_core_rewrite().line_filter().call_finish(store, handle)
        })?;
        let output = result.map_err(|e| self.session.refused("line-filter.finish", e))?;
        self.session.call("line-filter.drop", |store| handle.resource_drop(store))?;
        Ok(output)
    }
}

/// An incremental export's change encoder (see `incremental` in the WIT). The events it
/// returns are checked by the host's encoder-output sink as it applies them, as a shard's are.
pub struct ChangeEncoder {
    pub(crate) session: Session,
    pub(crate) handle: Option<ResourceAny>,
}

impl ChangeEncoder {
    /// The component's name in messages.
    pub fn component(&self) -> String {
        self.session.component()
    }

    fn handle(&self, call: &'static str) -> Result<ResourceAny, ComponentError> {
        self.handle
            .ok_or_else(|| self.session.contract(call, "the change encoder already returned its last output".into()))
    }

    /// Adds one page of stream records, packed as the WIT's `change-page` says (the host's
    /// stream reader packs them).
    pub fn add_records(&mut self, packed: &[u8]) -> Result<(), ComponentError> {
        let handle = self.handle("change-encoder.add-records")?;
        let exports = self.session.exports.clone();
        let result = self.session.call("change-encoder.add-records", |store| {
            exports.ddb_export_core_incremental().change_encoder().call_add_records(store, handle, packed)
        })?;
        result.map_err(|e| self.session.refused("change-encoder.add-records", e))
    }

    /// The next output; empty once everything is written, and then the resource is freed.
    pub fn encode_next(&mut self) -> Result<Vec<EncoderEvent>, ComponentError> {
        let handle = self.handle("change-encoder.encode-next")?;
        let exports = self.session.exports.clone();
        let result = self.session.call("change-encoder.encode-next", |store| {
            exports.ddb_export_core_incremental().change_encoder().call_encode_next(store, handle)
        })?;
        let output = result.map_err(|e| self.session.refused("change-encoder.encode-next", e))?;
        if output.is_empty() {
            self.handle = None;
            self.session.call("change-encoder.drop", |store| handle.resource_drop(store))?;
        }
        Ok(convert::events_from_wit(output))
    }
}

/// Checks one data file as its bytes are fed in (see `verify` in the WIT).
pub struct FileChecker {
    pub(crate) session: Session,
    pub(crate) handle: ResourceAny,
    /// The key hashes `feed` returned so far.
    pub(crate) key_hashes: Vec<u8>,
}

impl FileChecker {
    /// The next bytes of the file.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ComponentError> {
        let (exports, handle) = (self.session.exports.clone(), self.handle);
        let hashes = self.session.call("data-file-checker.feed", |store| {
            exports.ddb_export_core_verify().data_file_checker().call_feed(store, handle, bytes)
        })?;
        if hashes.len() % 16 != 0 {
            let message = format!("it returned {} bytes of key hashes, not 16 a line", hashes.len());
            return Err(self.session.contract("data-file-checker.feed", message));
        }
        self.key_hashes.extend_from_slice(&hashes);
        Ok(())
    }

    /// The file's report (with every line's key hash); frees the resource.
    pub fn finish(mut self) -> Result<FileReport, ComponentError> {
        let (exports, handle) = (self.session.exports.clone(), self.handle);
        let report = self.session.call("data-file-checker.finish", |store| {
            exports.ddb_export_core_verify().data_file_checker().call_finish(store, handle)
        })?;
        self.session.call("data-file-checker.drop", |store| handle.resource_drop(store))?;
        let earlier = std::mem::take(&mut self.key_hashes);
        convert::file_report_from_wit(report, earlier).map_err(|m| self.session.contract("data-file-checker.finish", m))
    }
}

/// A shard's encoder. Events it returns are not yet checked against the sequence rules; the
/// host's encoder-output sink does that as it applies them, together with sizes and MD5s.
pub struct Encoder {
    pub(crate) backend: EncoderBackend,
    pub(crate) handle: Option<ResourceAny>,
    /// The packed page, reused between calls.
    pub(crate) packed: Vec<u8>,
}

/// Whose encoder it is: the component's own, or an encoder plugin's.
pub(crate) enum EncoderBackend {
    Component(Session),
    Plugin(Session<plugin::Bindings>),
}

impl Encoder {
    /// The component's name in messages.
    pub fn component(&self) -> String {
        match &self.backend {
            EncoderBackend::Component(session) => session.component(),
            EncoderBackend::Plugin(session) => session.component(),
        }
    }

    fn handle(&self, call: &'static str) -> Result<ResourceAny, ComponentError> {
        self.handle.ok_or_else(|| ComponentError::Contract {
            component: self.component(),
            call,
            message: "the encoder was already finished".into(),
        })
    }

    /// Encodes one Scan page, its items in DynamoDB JSON as the service sent them (a JSON
    /// array). The component reads them itself (`encode-json-page`); a plugin, whose API takes
    /// packed pages, gets them read and packed here, by the same reader the component runs.
    /// A page the reader refuses is [`ComponentError::UnsupportedItem`], naming the item.
    pub fn encode_json(&mut self, items: &[u8]) -> Result<Vec<EncoderEvent>, ComponentError> {
        let handle = self.handle("encoder.encode-json-page")?;
        let unsupported = |component: String, message: &str| ComponentError::UnsupportedItem {
            component,
            source: UnsupportedItem::of_page(message),
        };
        match &mut self.backend {
            EncoderBackend::Component(session) => {
                let call = "encoder.encode-json-page";
                let exports = session.exports.clone();
                let result = session.call(call, |store| {
                    exports.ddb_export_core_write().encoder().call_encode_json_page(store, handle, items)
                })?;
                match result {
                    Ok(output) => Ok(convert::events_from_wit(output)),
                    Err(bindings::write::Error::InvalidPage(message)) => {
                        Err(unsupported(session.component(), &message))
                    }
                    Err(refusal) => Err(session.refused(call, refusal)),
                }
            }
            EncoderBackend::Plugin(session) => {
                let arena = ddb_export_data_files::json_page::Arena::new();
                let page = ddb_export_data_files::json_page::read(items, &arena)
                    .map_err(|e| unsupported(session.component(), &e.0))?;
                self.packed = ddb_export_data_files::page::writer::page(&page);
                plugin::encode_page(session, handle, &self.packed)
            }
        }
    }

    /// Closes the encoder, returning its last events, and frees the resource.
    pub fn finish(&mut self) -> Result<Vec<EncoderEvent>, ComponentError> {
        let call = "encoder.finish";
        let handle = self.handle(call)?;
        self.handle = None;
        match &mut self.backend {
            EncoderBackend::Component(session) => {
                let exports = session.exports.clone();
                let result =
                    session.call(call, |store| exports.ddb_export_core_write().encoder().call_finish(store, handle))?;
                let output = result.map_err(|e| session.refused(call, e))?;
                session.call("encoder.drop", |store| handle.resource_drop(store))?;
                Ok(convert::events_from_wit(output))
            }
            EncoderBackend::Plugin(session) => plugin::finish(session, handle),
        }
    }
}

/// Decodes one data file into write batches (see `restore` in the WIT). A line the component
/// cannot decode is a [`DecodeError`] (the file's fault); anything else it does wrong is a
/// [`ComponentError`].
pub struct FileDecoder {
    pub(crate) session: Session,
    pub(crate) handle: ResourceAny,
    /// The line the next batch may start at, at the earliest.
    pub(crate) next_line: u64,
}

impl FileDecoder {
    /// The next bytes of the file; returns the batches they filled.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Result<Vec<WriteBatch>, DecodeError>, ComponentError> {
        let (exports, handle) = (self.session.exports.clone(), self.handle);
        let result = self.session.call("data-file-decoder.feed", |store| {
            exports.ddb_export_core_restore().data_file_decoder().call_feed(store, handle, bytes)
        })?;
        self.checked("data-file-decoder.feed", result)
    }

    /// The file's last batch; frees the resource.
    pub fn finish(mut self) -> Result<Result<Vec<WriteBatch>, DecodeError>, ComponentError> {
        let (exports, handle) = (self.session.exports.clone(), self.handle);
        let result = self.session.call("data-file-decoder.finish", |store| {
            exports.ddb_export_core_restore().data_file_decoder().call_finish(store, handle)
        })?;
        self.session.call("data-file-decoder.drop", |store| handle.resource_drop(store))?;
        self.checked("data-file-decoder.finish", result)
    }

    fn checked(
        &mut self,
        function: &'static str,
        result: Result<Vec<bindings::restore::WriteBatch>, bindings::restore::DecodeError>,
    ) -> Result<Result<Vec<WriteBatch>, DecodeError>, ComponentError> {
        match result {
            Ok(batches) => convert::write_batches_from_wit(batches, &mut self.next_line)
                .map(Ok)
                .map_err(|message| self.session.contract(function, message)),
            Err(error) => Ok(Err(DecodeError { line: error.line, message: error.message })),
        }
    }
}
