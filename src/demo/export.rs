//! The partner export stream: `{"beneficiaries":[…]}` generated on demand, chunk by chunk.
//!
//! Pull-based: a chunk (~64 KiB) is produced only when the connection polls for it, so memory stays
//! at one chunk whatever the size of the export. A district export scans indices and skips other
//! districts; each poll scans a bounded number of indices and yields when it found nothing yet.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::data::Dataset;

/// Target chunk size.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Most indices one poll examines before yielding to the executor.
const SCAN_BUDGET: u64 = 1 << 16;
const OPEN: &[u8] = b"{\"beneficiaries\":[";
const CLOSE: &[u8] = b"]}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    Records,
    Done,
}

/// The export body. `district = None` exports every record.
#[derive(Debug)]
pub struct ExportBody {
    dataset: Dataset,
    district: Option<u32>,
    next: u64,
    end: u64,
    first: bool,
    phase: Phase,
    /// The last `(mobile, district)` looked up, to skip repeated hashing within a family.
    family: (u64, u32),
}

impl ExportBody {
    pub fn new(dataset: Dataset, district: Option<u32>) -> ExportBody {
        ExportBody {
            dataset,
            district,
            next: 0,
            end: dataset.beneficiaries(),
            first: true,
            phase: Phase::Open,
            family: (0, 0),
        }
    }

    fn in_district(&mut self, index: u64, district: u32) -> bool {
        let mobile = self.dataset.mobile_of(index);
        if self.family.0 != mobile {
            self.family = (mobile, self.dataset.district_of_mobile(mobile));
        }
        self.family.1 == district
    }

    /// Produce the next chunk; `None` when the scan budget ran out before any byte was written.
    fn fill(&mut self) -> Option<Bytes> {
        let mut out = Vec::with_capacity(CHUNK_BYTES + 2048);
        if self.phase == Phase::Open {
            out.extend_from_slice(OPEN);
            self.phase = Phase::Records;
        }
        let mut scanned = 0;
        while self.next < self.end && out.len() < CHUNK_BYTES && scanned < SCAN_BUDGET {
            let index = self.next;
            self.next += 1;
            scanned += 1;
            if let Some(d) = self.district
                && !self.in_district(index, d)
            {
                continue;
            }
            if !self.first {
                out.push(b',');
            }
            self.first = false;
            self.dataset.beneficiary(index).write_json(&mut out);
        }
        if self.next >= self.end {
            out.extend_from_slice(CLOSE);
            self.phase = Phase::Done;
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}

impl Body for ExportBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.phase == Phase::Done {
            return Poll::Ready(None);
        }
        match this.fill() {
            Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            None => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.phase == Phase::Done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
