//! File imports: `file_read`, `file_size`, and the `file_read_begin` /
//! `file_read_end` pair, on the mounts the handler's configuration grants
//! ([`crate::capability::files`] does the path checks and the reading).

use wasmtime::{Caller, Linker};

use super::memory::{read, write_some};
use super::ops::{Failure, Kind, Prepared, Value, begin, end};
use super::{Ctx, check_buffer, memory_and_ctx};
use crate::abi::{MODULE, code};
use crate::capability::files::{FileError, Mounts};

pub(super) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    linker.func_wrap_async(
        MODULE,
        "file_read",
        |caller: Caller<'_, Ctx>, (path, path_len, offset, buf, cap): (i32, i32, i64, i32, i32)| {
            Box::new(file_read(caller, path, path_len, offset, buf, cap))
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "file_size",
        |caller: Caller<'_, Ctx>, (path, path_len): (i32, i32)| {
            Box::new(file_size(caller, path, path_len))
        },
    )?;
    linker.func_wrap(MODULE, "file_read_begin", file_read_begin)?;
    linker.func_wrap_async(
        MODULE,
        "file_read_end",
        |caller: Caller<'_, Ctx>, (op, buf, cap): (i32, i32, i32)| {
            Box::new(end(caller, op, Kind::FileRead, buf, cap))
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

async fn read_chunk(
    path: String,
    mounts: Mounts,
    offset: u64,
    len: usize,
) -> Result<Vec<u8>, Failure> {
    mounts
        .read_at(&path, offset, len)
        .await
        .map_err(file_failure)
}

async fn file_read(
    mut caller: Caller<'_, Ctx>,
    path: i32,
    path_len: i32,
    offset: i64,
    buf: i32,
    cap: i32,
) -> wasmtime::Result<i32> {
    check_buffer(&mut caller, buf, cap)?;
    let prepared = path_and_mounts(&mut caller, path, path_len)?
        .and_then(|(path, mounts)| Ok((path, mounts, offset_of(offset)?)));
    let (path, mounts, offset) = match prepared {
        Ok(p) => p,
        Err(failure) => return Ok(caller.data_mut().fail(failure)),
    };
    let len = cap as u32 as usize;
    match read_chunk(path, mounts, offset, len).await {
        Ok(bytes) => {
            let (memory, _) = memory_and_ctx(&mut caller)?;
            Ok(write_some(memory, buf, cap, &bytes)? as i32)
        }
        Err(failure) => Ok(caller.data_mut().fail(failure)),
    }
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

fn file_read_begin(
    mut caller: Caller<'_, Ctx>,
    path: i32,
    path_len: i32,
    offset: i64,
    len: i32,
) -> wasmtime::Result<i32> {
    let read: Prepared =
        path_and_mounts(&mut caller, path, path_len)?.and_then(|(path, mounts)| -> Prepared {
            let offset = offset_of(offset)?;
            let len = usize::try_from(len)
                .map_err(|_| Failure::new(code::INVALID, "the length is negative"))?;
            Ok(Box::pin(async move {
                read_chunk(path, mounts, offset, len)
                    .await
                    .map(Value::Bytes)
            }))
        });
    Ok(begin(&mut caller, Kind::FileRead, read))
}
