//! The writer's rotation and retention: sealing a full file under its first seq, and removing the
//! oldest rotated files by count or age (each removal written to the chain first).

use super::*;

impl Writer {
    /// Seals the current file under its first seq and puts a new `audit.log` in its place whose first line
    /// is a `rotate` checkpoint. Every step keeps a state the next start can read: the old file gets a
    /// second name (a hard link), the new file is written and synced under `audit.log.next`, then renamed
    /// over `audit.log` (atomic). `audit.log` is therefore never missing, so a missing one is always
    /// reported; a crash before the rename is undone at start.
    pub(super) fn rotate(&mut self) -> io::Result<()> {
        let sealed = self.paths.dir.join(rotated_name(LOG_FILE, self.file_first_seq));
        let linked = match std::fs::hard_link(&self.paths.current, &sealed) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && same_file(&sealed, &self.paths.current) => false,
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", sealed.display()))),
        };
        self.buf.clear();
        let body = self.control_body(Why::Rotate);
        let mac = line::encode(&mut self.buf, &self.key, self.next_seq, &self.prev, &body);
        self.buf.push(b'\n');
        let prepared = self.prepare_next();
        let file = match prepared.and_then(|f| std::fs::rename(&self.paths.next, &self.paths.current).map(|()| f)) {
            Ok(f) => f,
            Err(e) => {
                let _ = std::fs::remove_file(&self.paths.next);
                if linked {
                    let _ = std::fs::remove_file(&sealed);
                }
                return Err(e);
            }
        };
        self.file = file;
        let len = self.buf.len() as u64;
        self.file_first_seq = self.next_seq;
        self.commit(self.next_seq + 1, mac, len, len);
        let dir_synced = File::open(&self.paths.dir).and_then(|d| d.sync_all());
        self.status.fsyncs.fetch_add(2, Ordering::Relaxed);
        tracing::info!(sealed = %sealed.display(), "audit log rotated");
        let lines = std::mem::take(&mut self.buf);
        self.control_written(&lines[..lines.len() - 1]);
        self.buf = lines;
        self.retention_due = true;
        dir_synced
    }

    /// Creates `audit.log.next` holding `self.buf` (the new file's first line), synced.
    pub(super) fn prepare_next(&mut self) -> io::Result<File> {
        let _ = std::fs::remove_file(&self.paths.next);
        let mut f = OpenOptions::new().read(true).append(true).create_new(true).open(&self.paths.next)?;
        self.writes += 1;
        if let Some(fault) = self.fault
            && self.writes > fault.ok_writes
            && self.writes - fault.ok_writes <= fault.failing_writes
        {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "injected write fault"));
        }
        f.write_all(&self.buf)?;
        f.sync_data()?;
        Ok(f)
    }

    /// Removes the oldest rotated files beyond `keep_files`, or last written before `keep_for` ago — each
    /// after a durable `retention` line that names it, so `audit verify` accepts the log's new start — and
    /// logs and counts each. Stops at the first file it cannot remove (never leaving a hole in the middle).
    pub(super) fn retention(&mut self) {
        self.last_retention = crate::clock::monotonic();
        if self.options.keep_files == 0 && self.options.keep_for.is_none() {
            return;
        }
        let rotated: Vec<files::LogFile> = match files::list(&self.paths.dir, LOG_FILE) {
            Ok(files) => files.into_iter().filter(|f| f.name_seq.is_some()).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "audit retention: cannot list the log's files");
                return;
            }
        };
        // The file after the last one listed, whatever rotations this pass's own lines cause.
        let current_first = self.file_first_seq;
        let by_count = rotated.len().saturating_sub(self.options.keep_files);
        let by_count = if self.options.keep_files == 0 { 0 } else { by_count };
        let by_age = match self.options.keep_for {
            Some(keep) => {
                let cutoff =
                    self.options.clock.now_ms().saturating_sub(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX));
                rotated.iter().take_while(|f| modified_ms(&f.path).is_some_and(|t| t < cutoff)).count()
            }
            None => 0,
        };
        for k in 0..by_count.max(by_age) {
            let (file, first_seq) = match &rotated[k] {
                files::LogFile { path, name_seq: Some(seq) } => (path, *seq),
                _ => return,
            };
            let next_seq = rotated.get(k + 1).and_then(|f| f.name_seq).unwrap_or(current_first);
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let reason = if k < by_count { "count" } else { "age" };
            let line = Control::Retention {
                time: crate::clock::rfc3339(self.options.clock.now_ms()),
                log: self.log_id.clone(),
                replica: self.options.replica.clone(),
                removed: name.clone(),
                first_seq,
                next_seq,
                reason: reason.into(),
            };
            if let Err(e) = self.append(&[Entry::Control(serde_json::to_vec(&line).unwrap_or_default())]) {
                self.failed(&e, "writing a retention line");
                return;
            }
            if let Err(e) = std::fs::remove_file(file) {
                tracing::warn!(error = %e, file = name, "audit retention: cannot remove; keeping it and every newer file");
                return;
            }
            self.status.files_removed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(file = name, reason, first_seq, next_seq, "audit log file removed by retention");
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => (x.dev(), x.ino()) == (y.dev(), y.ino()),
        _ => false,
    }
}

/// Unix ms of a file's last modification.
fn modified_ms(path: &Path) -> Option<u64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}
