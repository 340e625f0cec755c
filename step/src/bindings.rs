//! The generated bindings of the `step` world (`wit/step`). Nothing else in the crate is
//! generated.

wit_bindgen::generate!({
    world: "step",
    path: "../wit/step",
});
