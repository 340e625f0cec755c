//! Encoder plugins (`--encoder`): components of the `ddb-export:plugin` world that write a full
//! export's data files in their own format, in place of the default component's encoder.
//!
//! A plugin is loaded like the default component (same sandbox, limits and cache), but first
//! its plugin API version is read from the name of the interface it exports
//! (`ddb-export:plugin/encoder@<version>`): another version is refused before anything runs,
//! with a message naming both, rather than failing to link or trapping mid-export. Its events
//! go through the same checks as the default encoder's (the host checks both alike).

use std::sync::Arc;

use wasmtime::component::ResourceAny;

pub(crate) use super::bindings::plugin::EncoderPlugin as Bindings;
use super::bindings::plugin::{EncoderPluginPre, encoder};
use super::{CacheDir, ComponentError, ComponentSource, GuestLimits, HostState, Sandbox, Session};
use ddb_export_model::{CustomFormat, DataFileFacts, EncoderEvent, EncoderOptions, Snapshot};

/// The plugin API this host runs: the `ddb-export:plugin` WIT package's version.
pub const PLUGIN_API_VERSION: &str = "0.1.0";

/// The interface a plugin exports, without its version.
const PLUGIN_INTERFACE: &str = "ddb-export:plugin/encoder";

/// What a plugin says it is (`plugin-info` in the WIT), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub file_extension: String,
    pub output_format: String,
}

/// A loaded encoder plugin and the `--encoder-arg`s it runs with.
#[derive(Clone)]
pub struct EncoderPlugin {
    sandbox: Arc<Sandbox>,
    pre: EncoderPluginPre<HostState>,
    info: PluginInfo,
    args: Vec<(String, String)>,
}

impl EncoderPlugin {
    /// Loads the plugin at `path`: checks its API version, links it (WASI only: a plugin
    /// imports nothing of ours), reads and checks its `info`, and opens one encoder with `args`
    /// so that bad arguments are refused before an export begins.
    pub fn load(
        path: &std::path::Path,
        args: Vec<(String, String)>,
        limits: GuestLimits,
        cache: &CacheDir,
    ) -> Result<Self, ComponentError> {
        let source = ComponentSource::File(path.to_path_buf());
        let name = format!("encoder plugin {}", path.display());
        let (sandbox, component, _) = Sandbox::compile(&source, name, limits, cache)?;
        check_api_version(&sandbox, &component)?;
        let linker = sandbox.linker()?;
        let pre = linker.instantiate_pre(&component).map_err(|e| sandbox.load_error(e))?;
        let pre = EncoderPluginPre::new(pre).map_err(|e| sandbox.load_error(e))?;
        let mut session = sandbox.instance(|store| pre.instantiate(store))?;
        let exports = session.exports.clone();
        let info = session.call("info", |store| exports.ddb_export_plugin_encoder().call_info(store))?;
        let info = check_info(info).map_err(|message| session.contract("info", message))?;
        let plugin = Self { sandbox, pre, info, args };
        // The arguments are the plugin's to judge; a refusal now names them before any I/O.
        let probe = EncoderOptions { shard_id: 0, target_file_bytes: 0, compression_level: 6, first_sequence: 0 };
        let mut encoder = plugin.open(&probe, "00000000000000-00000000", "probe/")?;
        encoder.finish()?;
        Ok(plugin)
    }

    /// What the plugin said it is.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The `--encoder-arg`s, in order.
    pub fn args(&self) -> &[(String, String)] {
        &self.args
    }

    /// SHA-256 of the plugin's bytes (hex).
    pub fn digest(&self) -> &str {
        &self.sandbox.digest
    }

    /// The plugin's name in messages.
    pub fn name(&self) -> &str {
        &self.sandbox.name
    }

    /// The format the snapshot records for this plugin.
    pub fn custom_format(&self) -> CustomFormat {
        CustomFormat {
            output_format: self.info.output_format.clone(),
            file_extension: self.info.file_extension.clone(),
        }
    }

    /// An encoder for one shard of `snapshot`, in a fresh instance.
    pub(crate) fn open_encoder(
        &self,
        snapshot: &Snapshot,
        options: &EncoderOptions,
    ) -> Result<super::Encoder, ComponentError> {
        if snapshot.custom_format.as_ref() != Some(&self.custom_format()) {
            return Err(ComponentError::Refused {
                component: self.sandbox.name.clone(),
                call: "encoder.open",
                message: format!(
                    "the export's data files are {}, not this plugin's {}",
                    snapshot.output_format(),
                    self.info.output_format
                ),
            });
        }
        self.open(options, &snapshot.export_id, &snapshot.keys.data_prefix)
    }

    fn open(
        &self,
        options: &EncoderOptions,
        export_id: &str,
        data_prefix: &str,
    ) -> Result<super::Encoder, ComponentError> {
        let pre = self.pre.clone();
        let mut session = self.sandbox.instance(|store| pre.instantiate(store))?;
        let exports = session.exports.clone();
        let wit_options = encoder::EncoderOptions {
            export_id: export_id.to_string(),
            data_prefix: data_prefix.to_string(),
            shard_id: options.shard_id,
            target_file_bytes: options.target_file_bytes,
            compression_level: options.compression_level,
            first_sequence: options.first_sequence,
        };
        let args = &self.args;
        let result = session.call("encoder.open", |store| {
            exports.ddb_export_plugin_encoder().encoder().call_open(store, &wit_options, args)
        })?;
        let handle = result.map_err(|e| refusal(&session, "encoder.open", e))?;
        Ok(super::Encoder {
            backend: crate::resources::EncoderBackend::Plugin(session),
            handle: Some(handle),
            packed: Vec::new(),
        })
    }
}

/// Reads the plugin API version from the name of the interface the component exports.
fn check_api_version(sandbox: &Sandbox, component: &wasmtime::component::Component) -> Result<(), ComponentError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(&sandbox.engine).map(|(name, _)| name.to_string()).collect();
    let load = |message: String| ComponentError::Load { component: sandbox.name.clone(), message };
    // Exactly this version: in 0.x, any other may differ in its types. (A plugin may export
    // several versions; one of them must be this one.)
    let versions: Vec<&str> =
        exports.iter().filter_map(|name| name.strip_prefix(PLUGIN_INTERFACE)?.strip_prefix('@')).collect();
    if versions.is_empty() {
        return Err(load(format!(
            "it is not an encoder plugin: it exports no `{PLUGIN_INTERFACE}` interface (it exports: {})",
            if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
        )));
    }
    if !versions.contains(&PLUGIN_API_VERSION) {
        let version = versions.join(", ");
        return Err(load(format!(
            "it was built against plugin API {version}, and this ddb-export runs plugin API \
             {PLUGIN_API_VERSION}: rebuild it against ddb-export-plugin-sdk {PLUGIN_API_VERSION} \
             (or run a ddb-export that supports API {version})"
        )));
    }
    Ok(())
}

/// A plugin's info must be usable in keys and in the summary (`custom-format`'s rules).
fn check_info(info: encoder::PluginInfo) -> Result<PluginInfo, String> {
    let info = PluginInfo {
        name: info.name,
        version: info.version,
        file_extension: info.file_extension,
        output_format: info.output_format,
    };
    super::validate::custom_format(&CustomFormat {
        output_format: info.output_format.clone(),
        file_extension: info.file_extension.clone(),
    })?;
    if matches!(info.output_format.as_str(), "DYNAMODB_JSON" | "ION") {
        return Err(format!("output format {} is the default component's, not a plugin's", info.output_format));
    }
    Ok(info)
}

fn refusal(session: &Session<Bindings>, call: &'static str, error: encoder::Error) -> ComponentError {
    let message = match error {
        encoder::Error::InvalidArguments(m) => format!("invalid {}: {m}", ddb_export_model::Field::EncoderArgs),
        encoder::Error::InvalidOptions(m) => format!("invalid options: {m}"),
        encoder::Error::InvalidPage(m) => format!("invalid page: {m}"),
        encoder::Error::Other(m) => m,
    };
    ComponentError::Refused { component: session.component(), call, message }
}

pub(super) fn encode_page(
    session: &mut Session<Bindings>,
    handle: ResourceAny,
    packed: &[u8],
) -> Result<Vec<EncoderEvent>, ComponentError> {
    let exports = session.exports.clone();
    let result = session.call("encoder.encode-page", |store| {
        exports.ddb_export_plugin_encoder().encoder().call_encode_page(store, handle, packed)
    })?;
    Ok(events(result.map_err(|e| refusal(session, "encoder.encode-page", e))?))
}

pub(super) fn finish(
    session: &mut Session<Bindings>,
    handle: ResourceAny,
) -> Result<Vec<EncoderEvent>, ComponentError> {
    let exports = session.exports.clone();
    let result = session
        .call("encoder.finish", |store| exports.ddb_export_plugin_encoder().encoder().call_finish(store, handle))?;
    let output = result.map_err(|e| refusal(session, "encoder.finish", e))?;
    session.call("encoder.drop", |store| handle.resource_drop(store))?;
    Ok(events(output))
}

fn events(output: Vec<encoder::Output>) -> Vec<EncoderEvent> {
    output
        .into_iter()
        .map(|event| match event {
            encoder::Output::FileStarted(key) => EncoderEvent::FileStarted(key),
            encoder::Output::Bytes(bytes) => EncoderEvent::Bytes(bytes),
            encoder::Output::FileFinished(f) => EncoderEvent::FileFinished(DataFileFacts {
                key: f.key,
                item_count: f.item_count,
                md5: f.md5,
                size_bytes: f.size_bytes,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(output_format: &str, file_extension: &str) -> encoder::PluginInfo {
        encoder::PluginInfo {
            name: "csv".into(),
            version: "1".into(),
            file_extension: file_extension.into(),
            output_format: output_format.into(),
        }
    }

    #[test]
    fn a_plugin_s_format_must_fit_keys_and_the_summary_and_not_pose_as_ours() {
        assert_eq!(check_info(info("CSV", "csv.gz")).unwrap().file_extension, "csv.gz");
        assert!(check_info(info("PARQUET", "parquet")).is_ok());
        for (format, extension) in [
            ("csv", "csv"),
            ("CSV", "csv/../x"),
            ("CSV", ".csv"),
            ("CSV", ""),
            ("DYNAMODB_JSON", "json.gz"),
            ("ION", "x"),
        ] {
            assert!(check_info(info(format, extension)).is_err(), "{format} {extension}");
        }
    }
}
