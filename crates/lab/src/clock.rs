//! Wall-clock time as the emulator records it: seconds since the Unix epoch, so times taken here
//! and in the emulator's timelines compare directly.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
