//! MD5 in the encodings S3 and AWS's manifests use.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};

/// base64 of the MD5 of `bytes`: the `Content-MD5` header and the `.md5` manifest files.
pub fn md5_base64(bytes: &[u8]) -> String {
    base64(&md5(bytes))
}

/// The raw 16-byte MD5 of `bytes`.
pub fn md5(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

/// An MD5 computed over bytes as they stream past.
#[derive(Default, Clone)]
pub struct RunningMd5 {
    md5: Md5,
    len: u64,
}

impl RunningMd5 {
    pub fn update(&mut self, bytes: &[u8]) {
        self.md5.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no byte was seen.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The raw 16-byte digest.
    pub fn finish(self) -> [u8; 16] {
        self.md5.finalize().into()
    }
}

/// base64 of a raw digest.
pub fn base64(digest: &[u8]) -> String {
    STANDARD.encode(digest)
}

/// Lowercase hex of a raw digest: a single-part S3 ETag.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_known_vectors() {
        assert_eq!(md5_base64(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
        let mut running = RunningMd5::default();
        running.update(b"a");
        running.update(b"bc");
        assert_eq!(running.len(), 3);
        assert_eq!(hex(&running.finish()), "900150983cd24fb0d6963f7d28e17f72");
    }
}
