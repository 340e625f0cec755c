//! The generated bindings of the `encoder-plugin` world (`../wit/plugin`). Nothing else in the
//! crate is generated, and nothing here is an API: plugin authors reach it only through the
//! expansion of [`export_encoder!`](crate::export_encoder).
//!
//! The export macro is public and defaults to this module, so it works from a plugin's crate;
//! the generated code finds wit-bindgen's runtime through this crate, so a plugin needs no
//! wit-bindgen dependency of its own.

wit_bindgen::generate!({
    world: "encoder-plugin",
    path: "../wit/plugin",
    pub_export_macro: true,
    default_bindings_module: "ddb_export_plugin_sdk::bindings",
    runtime_path: "ddb_export_plugin_sdk::__private::wit_bindgen::rt",
});
