//! Pure application of FoundationDB's atomic mutations and versionstamp placement.
//! Shared by the embedded engine's read-your-writes layer and its commit path, so the
//! value a transaction reads back is the value that gets committed.

use bytes::Bytes;

use crate::error::{Error, ErrorCode, Result};
use crate::types::{MutationType, VALUE_SIZE_MAX, Versionstamp};

/// The new value of a key after `op` with `param` on `existing` (None: key absent).
/// Returns None when the mutation clears the key.
pub fn apply_atomic(op: MutationType, existing: Option<&[u8]>, param: &[u8]) -> Option<Bytes> {
    match op {
        MutationType::Add => {
            let base = resized(existing.unwrap_or(&[]), param.len());
            let mut out = Vec::with_capacity(param.len());
            let mut carry = 0u16;
            for (a, b) in base.iter().zip(param) {
                let sum = u16::from(*a) + u16::from(*b) + carry;
                out.push(sum as u8);
                carry = sum >> 8;
            }
            Some(Bytes::from(out))
        }
        MutationType::BitAnd => match existing {
            None => Some(Bytes::copy_from_slice(param)),
            Some(e) => Some(bytewise(e, param, |a, b| a & b)),
        },
        MutationType::BitOr => Some(bytewise(existing.unwrap_or(&[]), param, |a, b| a | b)),
        MutationType::BitXor => Some(bytewise(existing.unwrap_or(&[]), param, |a, b| a ^ b)),
        MutationType::AppendIfFits => {
            let e = existing.unwrap_or(&[]);
            if e.len() + param.len() > VALUE_SIZE_MAX {
                Some(Bytes::copy_from_slice(e))
            } else {
                let mut out = e.to_vec();
                out.extend_from_slice(param);
                Some(Bytes::from(out))
            }
        }
        MutationType::Max | MutationType::Min => match existing {
            None => Some(Bytes::copy_from_slice(param)),
            Some(e) => {
                let base = resized(e, param.len());
                let base_is_less = compare_le(&base, param) == std::cmp::Ordering::Less;
                let keep_param = (op == MutationType::Max) == base_is_less;
                Some(if keep_param { Bytes::copy_from_slice(param) } else { Bytes::from(base) })
            }
        },
        MutationType::ByteMax => match existing {
            Some(e) if e >= param => Some(Bytes::copy_from_slice(e)),
            _ => Some(Bytes::copy_from_slice(param)),
        },
        MutationType::ByteMin => match existing {
            Some(e) if e <= param => Some(Bytes::copy_from_slice(e)),
            _ => Some(Bytes::copy_from_slice(param)),
        },
        MutationType::CompareAndClear => match existing {
            Some(e) if e == param => None,
            other => other.map(Bytes::copy_from_slice),
        },
        MutationType::SetVersionstampedKey | MutationType::SetVersionstampedValue => {
            unreachable!("versionstamped mutations are placed at commit, not applied to a value")
        }
    }
}

/// Splits a versionstamp template (key or value whose last 4 bytes are the little-endian
/// offset of the 10-byte placeholder) and checks the offset fits.
pub fn check_versionstamp_template(template: &[u8]) -> Result<(usize, usize)> {
    if template.len() < 4 {
        return Err(Error::with_context(
            ErrorCode::ClientInvalidOperation,
            "versionstamp template shorter than its 4-byte offset",
        ));
    }
    let body_len = template.len() - 4;
    let mut offset = [0u8; 4];
    offset.copy_from_slice(&template[body_len..]);
    let offset = u32::from_le_bytes(offset) as usize;
    if offset.checked_add(10).is_none_or(|end| end > body_len) {
        return Err(Error::with_context(
            ErrorCode::ClientInvalidOperation,
            format!("versionstamp offset {offset} does not leave 10 bytes in a {body_len}-byte template"),
        ));
    }
    Ok((body_len, offset))
}

/// The template with its placeholder replaced by `stamp` and the offset suffix removed.
/// The template must have passed `check_versionstamp_template`.
pub fn place_versionstamp(template: &[u8], stamp: Versionstamp) -> Bytes {
    let (body_len, offset) =
        check_versionstamp_template(template).expect("template checked when the mutation was added");
    let mut out = template[..body_len].to_vec();
    out[offset..offset + 10].copy_from_slice(&stamp.0);
    Bytes::from(out)
}

fn resized(value: &[u8], len: usize) -> Vec<u8> {
    let mut out = value[..value.len().min(len)].to_vec();
    out.resize(len, 0);
    out
}

fn bytewise(existing: &[u8], param: &[u8], f: impl Fn(u8, u8) -> u8) -> Bytes {
    let base = resized(existing, param.len());
    Bytes::from(base.iter().zip(param).map(|(a, b)| f(*a, *b)).collect::<Vec<_>>())
}

/// Compares two equal-length little-endian unsigned integers.
fn compare_le(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.iter().rev().cmp(b.iter().rev())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(n: i64) -> Vec<u8> {
        n.to_le_bytes().to_vec()
    }

    #[test]
    fn add_treats_absent_as_zero_and_wraps_at_param_width() {
        assert_eq!(apply_atomic(MutationType::Add, None, &le(5)).unwrap(), le(5));
        assert_eq!(apply_atomic(MutationType::Add, Some(&le(5)), &le(-7)).unwrap(), le(-2));
        assert_eq!(apply_atomic(MutationType::Add, Some(&[0xff]), &[1, 0]).unwrap(), vec![0, 1]);
        assert_eq!(apply_atomic(MutationType::Add, Some(&[0xff, 0xff]), &[1]).unwrap(), vec![0]);
    }

    #[test]
    fn max_min_compare_little_endian_unsigned() {
        assert_eq!(apply_atomic(MutationType::Max, Some(&le(300)), &le(2)).unwrap(), le(300));
        assert_eq!(apply_atomic(MutationType::Max, Some(&le(2)), &le(300)).unwrap(), le(300));
        assert_eq!(apply_atomic(MutationType::Min, Some(&le(2)), &le(300)).unwrap(), le(2));
        assert_eq!(apply_atomic(MutationType::Min, None, &le(300)).unwrap(), le(300));
    }

    #[test]
    fn byte_ops_bit_ops_append_and_compare_and_clear() {
        assert_eq!(apply_atomic(MutationType::ByteMax, Some(b"b"), b"a").unwrap(), &b"b"[..]);
        assert_eq!(apply_atomic(MutationType::ByteMin, Some(b"b"), b"a").unwrap(), &b"a"[..]);
        assert_eq!(apply_atomic(MutationType::BitAnd, None, &[0b1010]).unwrap(), vec![0b1010]);
        assert_eq!(apply_atomic(MutationType::BitAnd, Some(&[0b0110]), &[0b1010]).unwrap(), vec![0b0010]);
        assert_eq!(apply_atomic(MutationType::BitOr, Some(&[0b0110]), &[0b1010]).unwrap(), vec![0b1110]);
        assert_eq!(apply_atomic(MutationType::BitXor, Some(&[0b0110]), &[0b1010]).unwrap(), vec![0b1100]);
        assert_eq!(apply_atomic(MutationType::AppendIfFits, Some(b"ab"), b"c").unwrap(), &b"abc"[..]);
        let big = vec![0u8; VALUE_SIZE_MAX];
        assert_eq!(apply_atomic(MutationType::AppendIfFits, Some(&big), b"c").unwrap().len(), VALUE_SIZE_MAX);
        assert_eq!(apply_atomic(MutationType::CompareAndClear, Some(b"x"), b"x"), None);
        assert_eq!(apply_atomic(MutationType::CompareAndClear, Some(b"y"), b"x").unwrap(), &b"y"[..]);
    }

    #[test]
    fn versionstamp_is_placed_at_the_offset_and_the_suffix_dropped() {
        let mut template = b"k/".to_vec();
        template.extend_from_slice(&[0u8; 10]);
        template.extend_from_slice(b"/x");
        template.extend_from_slice(&2u32.to_le_bytes());
        let stamp = Versionstamp::new(0x0102, 7);
        let placed = place_versionstamp(&template, stamp);
        assert_eq!(&placed[..2], b"k/");
        assert_eq!(&placed[2..12], &stamp.0);
        assert_eq!(&placed[12..], b"/x");
        assert!(check_versionstamp_template(&[1, 2, 3]).is_err());
        let mut bad = vec![0u8; 8];
        bad.extend_from_slice(&0u32.to_le_bytes());
        assert!(check_versionstamp_template(&bad).is_err());
    }
}
