//! JSON strings, eight bytes at a time: finding where a string's plain run ends (at a quote,
//! a backslash or a control character) and writing a string with exactly serde_json's
//! escaping. Items are mostly plain text, and a byte-at-a-time loop over it is most of what
//! reading and writing a page costs in WebAssembly, which has no faster way here.

/// The position of the first byte from `at` on that is `"`, `\` or below 0x20 (what ends a
/// plain run inside a JSON string), or `bytes.len()` when there is none.
#[inline]
pub fn plain_run_end(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte of `x` is zero exactly when the matching bit of the result is set (no carries
    // cross a byte: each byte's high bit is cleared first, and the exact test is per byte).
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    while at + 8 <= bytes.len() {
        let mut chunk = [0u8; 8];
        chunk.copy_from_slice(&bytes[at..at + 8]);
        let word = u64::from_le_bytes(chunk);
        // Bytes below 0x20: those whose top three bits are all zero.
        let control = zero_bytes(word & 0xe0e0_e0e0_e0e0_e0e0);
        let quote = zero_bytes(word ^ (ONES * u64::from(b'"')));
        let backslash = zero_bytes(word ^ (ONES * u64::from(b'\\')));
        if control | quote | backslash != 0 {
            break;
        }
        at += 8;
    }
    while at < bytes.len() && !matches!(bytes[at], b'"' | b'\\' | 0x00..=0x1f) {
        at += 1;
    }
    at
}

/// Appends `s` as a JSON string with serde_json's escaping, byte for byte: UTF-8 kept as is,
/// `"` and `\` escaped, control characters as `\b` `\t` `\n` `\f` `\r` or `\u00xx`.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0;
    loop {
        let at = plain_run_end(bytes, run);
        out.extend_from_slice(&bytes[run..at]);
        let Some(&byte) = bytes.get(at) else { break };
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]),
        }
        run = at + 1;
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_run_ends_at_the_first_byte_a_json_string_cannot_hold_as_is() {
        for len in 0..40 {
            for stop in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                for position in 0..len {
                    let mut bytes = vec![b'a'; len];
                    bytes[position] = stop;
                    assert_eq!(plain_run_end(&bytes, 0), position, "{len} {stop} {position}");
                }
                assert_eq!(plain_run_end(&vec![b'a'; len], 0), len);
            }
        }
        // Bytes at and above 0x20 (0x7f and non-ASCII included) are plain.
        let plain: Vec<u8> = (0x20u8..=0xff).filter(|b| !matches!(b, b'"' | b'\\')).collect();
        assert_eq!(plain_run_end(&plain, 0), plain.len());
        assert_eq!(plain_run_end(b"ab\"cd\"", 3), 5);
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let every_byte: String = (0u8..=127).map(char::from).collect();
        let long = format!("{}\"{}\u{1}", "x".repeat(17), "é".repeat(9));
        for text in [every_byte.as_str(), "", "plain", "é✓😀 \u{7f}", "a\"b\\c\u{0}\u{1f}", "\n\r\t\u{8}\u{c}", &long]
        {
            let mut ours = Vec::new();
            write_str(&mut ours, text);
            assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(text).unwrap(), "{text:?}");
        }
    }
}
