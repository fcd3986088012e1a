//! `var_get`: the handler's `[variables]`, from the `wasmlet.toml` files
//! above it. Values were read when the configuration was, so the call never
//! waits; a variable the handler's configuration does not define is
//! `ABSENT`, like a missing header.

use wasmtime::{Caller, Linker};

use super::memory::{read, write_full_length};
use super::{Ctx, memory_and_ctx};
use crate::abi::{MODULE, code};

pub(super) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "var_get", var_get)?;
    Ok(())
}

fn var_get(
    mut caller: Caller<'_, Ctx>,
    name: i32,
    name_len: i32,
    buf: i32,
    cap: i32,
) -> wasmtime::Result<i32> {
    let (memory, ctx) = memory_and_ctx(&mut caller)?;
    // A name that is not UTF-8 cannot be defined in a wasmlet.toml.
    let Ok(name) = std::str::from_utf8(read(memory, name, name_len)?) else {
        return Ok(code::ABSENT);
    };
    match ctx.policy.variables.get(name) {
        Some(variable) => Ok(write_full_length(
            memory,
            buf,
            cap,
            variable.value.as_bytes(),
        )?),
        None => Ok(code::ABSENT),
    }
}
