//! A plain component engine: wasmtime, wasmtime-wasi and wasmtime-wasi-http, nothing of
//! ddb-export's runtime. It runs a component that imports only WASI 0.2 and `wasi:http` (the
//! step engine component) and calls its exports dynamically, parameters and results as JSON
//! (records as objects with kebab-case keys, `option` as `null` or the value, variants and
//! results as `{"case": payload}`), as a workflow engine such as Obelisk calls them. The tests
//! use it as the cheapest second engine; the benchmarks time the component with it.
//!
//! Outbound HTTP goes to loopback addresses only (the stand-ins); anything else is denied.

mod json;

use wasmtime::component::{Component, Linker, ResourceTable, Val};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// A compiled component, ready to be called in fresh instances.
pub struct PlainEngine {
    engine: Engine,
    pre: wasmtime::component::InstancePre<State>,
    env: Vec<(String, String)>,
}

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: LoopbackOnly,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// Sends a request only to a loopback address.
struct LoopbackOnly;

impl WasiHttpHooks for LoopbackOnly {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                )>,
            > + Send,
    > {
        let loopback = request.uri().host().is_some_and(|host| {
            host == "localhost"
                || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        });
        if !loopback {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let default: &mut dyn WasiHttpHooks = &mut [(); 0];
        default.send_request(request, options, fut)
    }
}

impl PlainEngine {
    /// Compiles `component`; its instances get `env` as their environment (the AWS variables
    /// the step adapter reads), WASI's clocks and randomness, and `wasi:http`.
    pub fn new(component: &[u8], env: Vec<(String, String)>) -> Result<Self, String> {
        let failed = |e: wasmtime::Error| format!("the component cannot be loaded: {e:#}");
        let engine = Engine::new(&Config::new()).map_err(failed)?;
        let component = Component::new(&engine, component).map_err(failed)?;
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(failed)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker).map_err(failed)?;
        let pre = linker.instantiate_pre(&component).map_err(failed)?;
        Ok(Self { engine, pre, env })
    }

    /// Calls `function` of the exported `interface` in a fresh instance with `params` (a JSON
    /// array, one element per parameter); returns its result as JSON. The call runs on a
    /// thread of its own (WASI's blocking calls must not run on an async runtime's thread).
    pub fn call(
        &self,
        interface: &str,
        function: &str,
        params: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| self.call_here(interface, function, params))
                .join()
                .unwrap_or_else(|_| Err(format!("{interface}.{function}: the engine's thread panicked")))
        })
    }

    fn call_here(
        &self,
        interface: &str,
        function: &str,
        params: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr();
        for (key, value) in &self.env {
            wasi.env(key, value);
        }
        let state =
            State { wasi: wasi.build(), table: ResourceTable::new(), http: WasiHttpCtx::new(), hooks: LoopbackOnly };
        let mut store = Store::new(&self.engine, state);
        let trapped = |e: wasmtime::Error| format!("{interface}.{function} trapped: {e:#}");
        let instance = self.pre.instantiate(&mut store).map_err(trapped)?;
        let missing = || format!("the component exports no {interface}.{function}");
        let exported = instance.get_export_index(&mut store, None, interface).ok_or_else(missing)?;
        let index = instance.get_export_index(&mut store, Some(&exported), function).ok_or_else(missing)?;
        let func = instance.get_func(&mut store, index).ok_or_else(missing)?;
        let ty = func.ty(&store);
        let given = params.as_array().ok_or("the parameters are not a JSON array")?;
        if given.len() != ty.params().len() {
            return Err(format!("{function} takes {} parameters, not {}", ty.params().len(), given.len()));
        }
        let params: Vec<Val> = ty
            .params()
            .zip(given)
            .map(|((name, ty), value)| json::to_val(value, &ty).map_err(|why| format!("parameter {name}: {why}")))
            .collect::<Result<_, _>>()?;
        let mut results = vec![Val::Bool(false); ty.results().len()];
        func.call(&mut store, &params, &mut results).map_err(trapped)?;
        Ok(match results.as_slice() {
            [] => serde_json::Value::Null,
            [one] => json::of_val(one),
            many => serde_json::Value::Array(many.iter().map(json::of_val).collect()),
        })
    }
}
