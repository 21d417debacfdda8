//! `lockrun append FILE JSON`: one compact, validated line at the end of a JSON Lines
//! file, under the lock. A failed write is cut back off, leaving the file as it was.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::cli::AppendArgs;
use crate::error::{Error, Result};
use crate::exit_code::ExitCode;
use crate::json::layout::Layout;
use crate::json::schema::Schema;
use crate::json::{self as js, atomic};

pub(crate) fn run(args: &AppendArgs, quiet: bool) -> Result<ExitCode> {
    let origin = js::display(&args.file);
    let value = js::parse(&format!("{origin}: JSON argument"), args.json.as_bytes())?;
    if let Some(path) = &args.schema {
        Schema::load(&origin, path)?.check(&origin, &value)?;
    }
    let line = Layout::compact().render(&value);
    if args.dry_run {
        super::json_out::print_text(&line)?;
        return Ok(ExitCode::Success);
    }
    let mut opts = super::options::lock_options(&args.lock, quiet);
    opts.command = Some("lockrun append".into());
    js::regular::check(&args.file)?;
    let guard = crate::lock::acquire(&args.file, &opts)?;
    let result = append_line(&args.file, &line);
    match result {
        Ok(()) => guard.release()?,
        Err(e) => {
            drop(guard);
            return Err(e);
        }
    }
    Ok(ExitCode::Success)
}

fn append_line(path: &std::path::Path, line: &str) -> Result<()> {
    crate::sys::ignore_file_size_signal();
    let io_err = |e| Error::io(path, e);
    let existed = path.exists();
    let mut opts = OpenOptions::new();
    opts.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o666);
    let mut file = js::regular::open(path, &mut opts).map_err(|e| {
        // Only creating the file needs the directory to be writable.
        let e = if existed {
            e
        } else {
            atomic::unwritable_dir(path, e)
        };
        js::regular::open_error(path, e)
    })?;
    let len = file.seek(SeekFrom::End(0)).map_err(io_err)?;
    let mut record = String::with_capacity(line.len() + 2);
    if len > 0 {
        // A last line without its newline (a crashed writer of another tool) stays
        // separate from ours.
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1)).map_err(io_err)?;
        file.read_exact(&mut last).map_err(io_err)?;
        if last[0] != b'\n' {
            record.push('\n');
        }
    }
    record.push_str(line);
    record.push('\n');
    let before = file.metadata().map_err(io_err)?;
    let end = len.saturating_add(record.len() as u64);
    // Past the file size limit (`ulimit -f`) the write would fail half-way: refuse
    // before writing anything.
    if crate::sys::file_size_limit().is_some_and(|max| end > max) {
        return Err(io_err(io::Error::from_raw_os_error(libc::EFBIG)));
    }
    let written = file
        .write_all(record.as_bytes())
        .and_then(|()| file.sync_data());
    if let Err(e) = written {
        // Cut back what was written, and give the file its times back: a failed
        // append leaves it as it was, mtime included.
        let _ = file.set_len(len);
        if let (Ok(modified), Ok(accessed)) = (before.modified(), before.accessed()) {
            let times = std::fs::FileTimes::new()
                .set_modified(modified)
                .set_accessed(accessed);
            let _ = file.set_times(times);
        }
        let _ = file.sync_data();
        if !existed && len == 0 {
            let _ = std::fs::remove_file(path);
        }
        return Err(io_err(e));
    }
    if !existed && let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        };
        atomic::sync_dir(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}
