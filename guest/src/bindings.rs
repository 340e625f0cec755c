//! The generated bindings of the `exporter` world. Nothing else in the crate is generated.
//!
//! The `export!` macro is public so that another crate can wrap the default component: with
//! the `component` feature off, it implements the traits here (delegating to
//! [`crate::component::Component`]) and calls
//! `ddb_export_guest::bindings::export!(Its with_types_in ddb_export_guest::bindings)`.

wit_bindgen::generate!({
    world: "exporter",
    path: "../wit",
    pub_export_macro: true,
    generate_all,
});
