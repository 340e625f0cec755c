//! The generated bindings of the `exporter` world. Nothing else in the crate is generated.

wit_bindgen::generate!({
    world: "exporter",
    path: "../wit",
    pub_export_macro: false,
    generate_all,
});
