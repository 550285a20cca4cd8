//! keepalived's arithmetic for tracked objects (pure): how scripts, interfaces and files
//! move an instance's priority or put it in FAULT.
use serde::Serialize;

/// A tracked object's current reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Reading {
    Up,
    Down,
    /// track_file: the number in the file.
    Value(i64),
    /// Not known yet, or disabled (e.g. refused by script security): no effect.
    Unknown,
}

/// One tracked object as an instance uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub weight: i32,
    pub reverse: bool,
    pub reading: Reading,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Effective {
    Priority(u8),
    Fault,
}

/// keepalived's rules:
/// - weight 0: a failure (script failing, interface down, non-zero file value) is FAULT;
/// - weight > 0: added while the object is up (down with `reverse`);
/// - weight < 0: added while the object is down (up with `reverse`);
/// - track_file: value × weight added (negated with `reverse`); ≤ -254 is FAULT.
///
/// The result is clamped to 1..=254; the address owner (255) keeps 255.
pub fn effective_priority(base: u8, tracked: &[Tracked]) -> Effective {
    let mut delta: i64 = 0;
    for object in tracked {
        let weight = i64::from(object.weight);
        match object.reading {
            Reading::Unknown => {}
            Reading::Value(value) => {
                if weight == 0 {
                    if value != 0 {
                        return Effective::Fault;
                    }
                    continue;
                }
                let change = value.saturating_mul(weight) * if object.reverse { -1 } else { 1 };
                if change <= -254 {
                    return Effective::Fault;
                }
                delta += change;
            }
            Reading::Up | Reading::Down => {
                let up = (object.reading == Reading::Up) != object.reverse;
                if weight == 0 {
                    if !up {
                        return Effective::Fault;
                    }
                } else if (weight > 0 && up) || (weight < 0 && !up) {
                    delta += weight;
                }
            }
        }
    }
    if base == 255 {
        return Effective::Priority(255);
    }
    Effective::Priority((i64::from(base) + delta).clamp(1, 254) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(weight: i32, reverse: bool, reading: Reading) -> Tracked {
        Tracked { weight, reverse, reading }
    }

    #[test]
    fn weight_zero_failure_is_fault() {
        assert_eq!(effective_priority(100, &[t(0, false, Reading::Down)]), Effective::Fault);
        assert_eq!(effective_priority(100, &[t(0, false, Reading::Up)]), Effective::Priority(100));
        assert_eq!(effective_priority(100, &[t(0, true, Reading::Up)]), Effective::Fault, "reverse");
    }

    #[test]
    fn positive_weight_adds_while_up_negative_while_down() {
        assert_eq!(effective_priority(100, &[t(10, false, Reading::Up)]), Effective::Priority(110));
        assert_eq!(effective_priority(100, &[t(10, false, Reading::Down)]), Effective::Priority(100));
        assert_eq!(effective_priority(100, &[t(-20, false, Reading::Down)]), Effective::Priority(80));
        assert_eq!(effective_priority(100, &[t(-20, false, Reading::Up)]), Effective::Priority(100));
        assert_eq!(effective_priority(100, &[t(-20, true, Reading::Up)]), Effective::Priority(80), "reverse");
    }

    #[test]
    fn file_values_multiply_the_weight_and_can_fault() {
        assert_eq!(effective_priority(100, &[t(2, false, Reading::Value(-5))]), Effective::Priority(90));
        assert_eq!(effective_priority(100, &[t(1, true, Reading::Value(7))]), Effective::Priority(93));
        assert_eq!(effective_priority(100, &[t(1, false, Reading::Value(-254))]), Effective::Fault);
        assert_eq!(effective_priority(100, &[t(0, false, Reading::Value(3))]), Effective::Fault);
    }

    #[test]
    fn the_result_stays_in_1_to_254_and_the_owner_keeps_255() {
        assert_eq!(effective_priority(250, &[t(50, false, Reading::Up)]), Effective::Priority(254));
        assert_eq!(effective_priority(10, &[t(-50, false, Reading::Down)]), Effective::Priority(1));
        assert_eq!(effective_priority(255, &[t(-50, false, Reading::Down)]), Effective::Priority(255));
        assert_eq!(effective_priority(100, &[t(-50, false, Reading::Unknown)]), Effective::Priority(100));
    }
}
