//! Point identifiers: an unsigned 64-bit integer or a UUID, as in Qdrant.

use std::fmt;

/// A point's external id. Numbers order before UUIDs; each kind orders by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PointId {
    Num(u64),
    Uuid(u128),
}

/// Bytes of one encoded id: a tag byte and 16 value bytes (numbers use the first 8).
pub const ENCODED_LEN: usize = 17;

impl PointId {
    /// Fixed-width little-endian encoding used in segment id files.
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        match *self {
            PointId::Num(n) => out[1..9].copy_from_slice(&n.to_le_bytes()),
            PointId::Uuid(u) => {
                out[0] = 1;
                out[1..17].copy_from_slice(&u.to_le_bytes());
            }
        }
        out
    }

    /// Inverse of `encode`; `None` for an unknown tag.
    pub fn decode(b: &[u8; ENCODED_LEN]) -> Option<PointId> {
        let (tag, rest) = b.split_first()?;
        let v: [u8; 16] = rest.try_into().ok()?;
        match tag {
            0 => {
                let n: [u8; 8] = v.get(..8)?.try_into().ok()?;
                Some(PointId::Num(u64::from_le_bytes(n)))
            }
            1 => Some(PointId::Uuid(u128::from_le_bytes(v))),
            _ => None,
        }
    }

    /// Parses `123` or a UUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, or 32 hex digits).
    pub fn parse(s: &str) -> Option<PointId> {
        let s = s.trim();
        if let Ok(n) = s.parse::<u64>() {
            return Some(PointId::Num(n));
        }
        parse_uuid(s).map(PointId::Uuid)
    }

    /// From a JSON id: a non-negative integer or a UUID string.
    pub fn from_json(v: &serde_json::Value) -> Option<PointId> {
        match v {
            serde_json::Value::Number(n) => n.as_u64().map(PointId::Num),
            serde_json::Value::String(s) => parse_uuid(s.trim()).map(PointId::Uuid),
            _ => None,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            PointId::Num(n) => serde_json::Value::from(*n),
            PointId::Uuid(_) => serde_json::Value::String(self.to_string()),
        }
    }
}

fn parse_uuid(s: &str) -> Option<u128> {
    let hex: String = match s.len() {
        36 => {
            let b = s.as_bytes();
            if [8, 13, 18, 23].iter().any(|&i| b.get(i) != Some(&b'-')) {
                return None;
            }
            s.chars().filter(|&c| c != '-').collect()
        }
        32 => s.to_string(),
        _ => return None,
    };
    if hex.len() != 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok()
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PointId::Num(n) => write!(f, "{n}"),
            PointId::Uuid(u) => {
                let h = format!("{u:032x}");
                write!(
                    f,
                    "{}-{}-{}-{}-{}",
                    &h[0..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..32]
                )
            }
        }
    }
}

impl From<u64> for PointId {
    fn from(n: u64) -> Self {
        PointId::Num(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_round_trip() {
        let s = "550e8400-e29b-41d4-a716-446655440000";
        let id = PointId::parse(s).unwrap();
        assert_eq!(id.to_string(), s);
        assert_eq!(PointId::decode(&id.encode()), Some(id));
        assert_eq!(PointId::parse("550e8400e29b41d4a716446655440000"), Some(id));
        assert_eq!(PointId::parse("550e8400-e29b-41d4-a716-44665544000"), None);
        assert_eq!(PointId::parse("-1"), None);
        assert_eq!(
            PointId::from_json(&serde_json::json!(7)),
            Some(PointId::Num(7))
        );
        assert_eq!(PointId::from_json(&serde_json::json!(-7)), None);
        assert!(PointId::Num(u64::MAX) < PointId::Uuid(0));
    }
}
