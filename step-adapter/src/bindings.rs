//! The generated bindings of the `adapter` world (`wit/step`). Nothing else in the crate is
//! generated.

wit_bindgen::generate!({
    world: "adapter",
    path: "../wit/step",
});
