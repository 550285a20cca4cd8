//! track_file values, read by polling. (Interfaces are followed through link events:
//! `interface`.)
use std::{path::Path, time::Duration};

use tokio::sync::watch;

use super::priority::Reading;

/// How often polled objects are read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// keepalived's track_file value: the first number in the file; a missing or empty file
/// reads as 0.
pub fn file_value(path: &Path) -> i64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.split_whitespace().next().and_then(|word| word.parse().ok()))
        .unwrap_or(0)
}

pub async fn file(name: String, path: String, reading: watch::Sender<Reading>) {
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    loop {
        ticker.tick().await;
        let now = Reading::Value(file_value(Path::new(&path)));
        if reading.send_if_modified(|old| std::mem::replace(old, now) != now) {
            tracing::info!(track_file = name, ?now, "tracked file changed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_read_the_first_number_or_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert_eq!(file_value(&path), 0, "missing");
        std::fs::write(&path, " -12\nrest").unwrap();
        assert_eq!(file_value(&path), -12);
        std::fs::write(&path, "abc").unwrap();
        assert_eq!(file_value(&path), 0);
    }
}
