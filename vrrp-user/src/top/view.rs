//! Drawing a `Screen` with ratatui.
use ratatui::{
    Frame,
    layout::{Constraint, Layout},
    style::{Modifier, Style},
    text::Line,
    widgets::{Block, Borders, Paragraph, Row, Table},
};

use super::model::Screen;

/// `12.3k`, `4.5M`: rates that fit a column.
pub fn human(value: f64) -> String {
    match value {
        v if v >= 1e9 => format!("{:.1}G", v / 1e9),
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e4 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

pub fn draw(frame: &mut Frame, screen: &Screen) {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let instance_height = screen.instances.len() as u16 + 3;
    let [title, instances, servers, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(instance_height), Constraint::Min(3), Constraint::Length(1)]).areas(frame.area());
    frame.render_widget(Paragraph::new(Line::from("keepxdp top — refreshed every second, q quits").style(bold)), title);

    let rows = screen.instances.iter().map(|i| Row::new(vec![i.name.clone(), i.interface.clone(), i.vrid.clone(), i.state.clone(), i.priority.clone(), i.master.clone()]));
    let table = Table::new(rows, [Constraint::Length(16), Constraint::Length(12), Constraint::Length(5), Constraint::Length(8), Constraint::Length(9), Constraint::Min(15)])
        .header(Row::new(["INSTANCE", "INTERFACE", "VRID", "STATE", "PRIO/BASE", "MASTER"]).style(bold))
        .block(Block::default().borders(Borders::TOP).title("VRRP"));
    frame.render_widget(table, instances);

    let rows = screen.servers.iter().map(|s| {
        Row::new(vec![s.label.clone(), s.up.clone(), s.weight.clone(), human(s.rate.cps), human(s.rate.in_pps), human(s.rate.in_bps)])
    });
    let table = Table::new(rows, [Constraint::Min(28), Constraint::Length(7), Constraint::Length(6), Constraint::Length(8), Constraint::Length(8), Constraint::Length(9)])
        .header(Row::new(["SERVICE / REAL SERVER", "STATE", "WEIGHT", "CONN/s", "PKT/s", "BYTES/s"]).style(bold))
        .block(Block::default().borders(Borders::TOP).title("Balancer"));
    frame.render_widget(table, servers);

    let mut text = format!("guard drops/s {}", human(screen.guard_drops_per_second));
    if let Some(note) = &screen.note {
        text.push_str(&format!("  ({note})"));
    }
    frame.render_widget(Paragraph::new(text), footer);
}

#[cfg(test)]
mod tests {
    use ratatui::{Terminal, backend::TestBackend};

    use super::*;
    use crate::{
        observe::rates::Rate,
        top::model::{InstanceRow, ServerRow},
    };

    #[test]
    fn the_screen_shows_instances_servers_and_rates() {
        let screen = Screen {
            instances: vec![InstanceRow {
                name: "VI_1".into(),
                interface: "eth0".into(),
                vrid: "51".into(),
                state: "Master".into(),
                priority: "150/150".into(),
                master: "10.0.0.2".into(),
            }],
            servers: vec![ServerRow { label: "  -> 10.0.0.11:80".into(), up: "up".into(), weight: "1".into(), rate: Rate { cps: 12.0, in_pps: 34_567.0, in_bps: 2.5e6 } }],
            guard_drops_per_second: 3.0,
            note: None,
        };
        let mut terminal = Terminal::new(TestBackend::new(100, 12)).unwrap();
        terminal.draw(|frame| draw(frame, &screen)).unwrap();
        let lines: Vec<String> = terminal
            .backend()
            .buffer()
            .content
            .chunks(100)
            .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
            .collect();
        let text = lines.join("\n");
        assert!(lines.iter().any(|l| l.starts_with("VI_1") && l.contains("Master") && l.contains("150/150")), "{text}");
        assert!(lines.iter().any(|l| l.contains("-> 10.0.0.11:80") && l.contains("34.6k") && l.contains("2.5M")), "{text}");
        assert!(lines.iter().any(|l| l.starts_with("guard drops/s 3")), "{text}");
    }
}
