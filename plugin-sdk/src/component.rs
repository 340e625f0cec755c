//! The WIT exports, implemented by [`ShardWriter`] for a plugin's [`Encoder`]. Generated types
//! appear here and in [`crate::bindings`] only. Public for the expansion of
//! [`export_encoder!`](crate::export_encoder); not an API.

use std::cell::RefCell;
use std::marker::PhantomData;

use ddb_export_data_files::framing::Event;

use crate::bindings::exports::ddb_export::plugin::encoder::{
    self as wit, DataFile, EncoderOptions, Guest, GuestEncoder, Output, PluginInfo,
};
use crate::{Encoder, Error, Options, ShardWriter};

/// The component of the plugin `E`: `export_encoder!(E)` exports `Component<E>`.
pub struct Component<E>(PhantomData<E>);

impl<E: Encoder> Guest for Component<E> {
    type Encoder = EncoderResource<E>;

    fn info() -> PluginInfo {
        info::<E>()
    }
}

/// The plugin's facts, from its constants.
pub fn info<E: Encoder>() -> PluginInfo {
    PluginInfo {
        name: E::NAME.into(),
        version: E::VERSION.into(),
        file_extension: E::FILE_EXTENSION.into(),
        output_format: E::OUTPUT_FORMAT.into(),
    }
}

/// The `encoder` resource. Methods take `&self`, so the state sits in a `RefCell`; a component
/// instance is single-threaded and never re-enters a method.
pub struct EncoderResource<E: Encoder>(RefCell<ShardWriter<E>>);

impl<E: Encoder> GuestEncoder for EncoderResource<E> {
    fn open(options: EncoderOptions, args: Vec<(String, String)>) -> Result<wit::Encoder, wit::Error> {
        let writer = ShardWriter::<E>::open(&options.into(), args)?;
        Ok(wit::Encoder::new(Self(RefCell::new(writer))))
    }

    fn encode_page(&self, page: Vec<u8>) -> Result<Vec<Output>, wit::Error> {
        Ok(outputs(self.0.borrow_mut().encode_page(&page)?))
    }

    fn finish(&self) -> Result<Vec<Output>, wit::Error> {
        Ok(outputs(self.0.borrow_mut().finish()?))
    }
}

impl From<EncoderOptions> for Options {
    fn from(o: EncoderOptions) -> Self {
        Options {
            export_id: o.export_id,
            data_prefix: o.data_prefix,
            shard_id: o.shard_id,
            target_file_bytes: o.target_file_bytes,
            compression_level: o.compression_level,
            first_sequence: o.first_sequence,
        }
    }
}

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidArguments(m) => wit::Error::InvalidArguments(m),
            Error::InvalidOptions(m) => wit::Error::InvalidOptions(m),
            Error::InvalidPage(m) => wit::Error::InvalidPage(m),
            Error::Other(m) => wit::Error::Other(m),
        }
    }
}

fn outputs(events: Vec<Event>) -> Vec<Output> {
    events
        .into_iter()
        .map(|event| match event {
            Event::Started(key) => Output::FileStarted(key),
            Event::Bytes(bytes) => Output::Bytes(bytes),
            Event::Finished(f) => Output::FileFinished(DataFile {
                key: f.key,
                item_count: f.item_count,
                md5: f.md5,
                size_bytes: f.size_bytes,
            }),
        })
        .collect()
}
