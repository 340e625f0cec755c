//! A plugin of a future plugin API, `ddb-export:plugin@0.2.0`, whose contract differs from
//! 0.1.0's. The host must refuse it before running anything, naming both versions
//! (`tests/e2e/plugins.rs`), instead of failing to link it or trapping.

wit_bindgen::generate!({
    inline: r#"
        package ddb-export:plugin@0.2.0;

        interface encoder {
            /// 0.2.0 describes itself as one string.
            info: func() -> string;
        }

        world encoder-plugin {
            export encoder;
        }
    "#,
});

struct FuturePlugin;

impl exports::ddb_export::plugin::encoder::Guest for FuturePlugin {
    fn info() -> String {
        "a plugin of API 0.2.0".into()
    }
}

#[cfg(target_arch = "wasm32")]
export!(FuturePlugin);
