//! `keepxdp top`: VRRP instances, services and real servers with their rates, guard drops,
//! refreshed every second until `q` (ratatui on crossterm). Reads what `keepxdp status`,
//! `keepxdp lvs` and `keepxdp guard-stats` read: the control socket and the pinned maps.
mod model;
mod view;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Result;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

pub use model::{Sample, Screen, screen};
pub use view::{draw, human};

use crate::{
    bpf::{read_guard_stats, read_lvs},
    ctl::read_status,
};

pub fn sample(pin_dir: &Path, control_socket: &Path) -> Sample {
    Sample {
        status: read_status(control_socket).ok().and_then(|d| serde_json::from_str(&d).ok()),
        lvs: read_lvs(pin_dir).ok(),
        guard: read_guard_stats(pin_dir).unwrap_or_default(),
    }
}

/// Runs until `q`, Esc or Ctrl-C.
pub fn run(pin_dir: &Path, control_socket: &Path, every: Duration) -> Result<()> {
    let mut terminal = ratatui::try_init()?;
    let result = (|| -> Result<()> {
        let mut before = sample(pin_dir, control_socket);
        let mut at = Instant::now();
        let mut shown = screen(&before, &before, Duration::from_secs(1));
        loop {
            terminal.draw(|frame| draw(frame, &shown))?;
            let deadline = at + every;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                if !event::poll(left)? {
                    break;
                }
                if let Event::Key(key) = event::read()?
                    && key.kind == KeyEventKind::Press
                    && (matches!(key.code, KeyCode::Char('q') | KeyCode::Esc)
                        || (key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL)))
                {
                    return Ok(());
                }
            }
            let after = sample(pin_dir, control_socket);
            let now = Instant::now();
            shown = screen(&before, &after, now - at);
            (before, at) = (after, now);
        }
    })();
    ratatui::restore();
    result
}
