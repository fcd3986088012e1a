//! File imports: `file_read` with its `file_read_begin` / `file_read_end`
//! pair, and `file_size`, on the mounts the handler's configuration grants
//! ([`crate::capability::files`] does the path checks and the reading).

use wasmtime::{Caller, Linker};

use super::memory::read;
use super::ops::{Failure, Kind, Prepared, Value, operation};
use super::{Ctx, memory_and_ctx};
use crate::abi::{MODULE, code};
use crate::capability::files::{FileError, Mounts};

pub(super) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    operation!(
        linker,
        "file_read",
        Kind::FileRead,
        bytes up to len,
        |caller, path: i32, path_len: i32, offset: i64| {
            prepare_read(&mut caller, path, path_len, offset, len)
        }
    );
    linker.func_wrap_async(
        MODULE,
        "file_size",
        |caller: Caller<'_, Ctx>, (path, path_len): (i32, i32)| {
            Box::new(file_size(caller, path, path_len))
        },
    )?;
    Ok(())
}

/// The guest's path, and the mounts it may be in.
fn path_and_mounts(
    caller: &mut Caller<'_, Ctx>,
    path: i32,
    path_len: i32,
) -> wasmtime::Result<Result<(String, Mounts), Failure>> {
    let (memory, ctx) = memory_and_ctx(caller)?;
    let Ok(path) = std::str::from_utf8(read(memory, path, path_len)?) else {
        return Ok(Err(Failure::new(
            code::INVALID,
            "the file path is not UTF-8",
        )));
    };
    if ctx.policy.mounts.is_empty() {
        return Ok(Err(Failure::new(
            code::DENIED,
            format!(
                "`{path}`: no directory is granted to {}; {}",
                ctx.handler,
                ctx.policy.grant_hint("[files] mounts")
            ),
        )));
    }
    Ok(Ok((path.to_owned(), ctx.policy.mounts.clone())))
}

fn file_failure(e: FileError) -> Failure {
    let code = match &e {
        FileError::Denied(_) => code::DENIED,
        FileError::Invalid(_) => code::INVALID,
        FileError::Absent(_) => code::ABSENT,
        FileError::Failed(_) => code::FAILED,
    };
    Failure::new(code, e.to_string())
}

fn offset_of(offset: i64) -> Result<u64, Failure> {
    u64::try_from(offset).map_err(|_| Failure::new(code::INVALID, "the offset is negative"))
}

async fn file_size(mut caller: Caller<'_, Ctx>, path: i32, path_len: i32) -> wasmtime::Result<i64> {
    let (path, mounts) = match path_and_mounts(&mut caller, path, path_len)? {
        Ok(p) => p,
        Err(failure) => return Ok(i64::from(caller.data_mut().fail(failure))),
    };
    match mounts.size(&path).await {
        Ok(size) => Ok(i64::try_from(size).unwrap_or(i64::MAX)),
        Err(e) => Ok(i64::from(caller.data_mut().fail(file_failure(e)))),
    }
}

/// Reads the path and checks the grant: the read of at most `len` bytes
/// at `offset`, ready to run.
fn prepare_read(
    caller: &mut Caller<'_, Ctx>,
    path: i32,
    path_len: i32,
    offset: i64,
    len: i32,
) -> wasmtime::Result<Prepared> {
    Ok(
        path_and_mounts(caller, path, path_len)?.and_then(|(path, mounts)| -> Prepared {
            let offset = offset_of(offset)?;
            let len = usize::try_from(len)
                .map_err(|_| Failure::new(code::INVALID, "the length is negative"))?;
            Ok(Box::pin(async move {
                mounts
                    .read_at(&path, offset, len)
                    .await
                    .map(Value::Bytes)
                    .map_err(file_failure)
            }))
        }),
    )
}
