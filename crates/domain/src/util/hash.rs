//! SHA-256 with an optimized implementation on every x86_64 and aarch64 CPU (aws-lc: SHA extensions where the
//! CPU has them, else AVX2/AVX/SSSE3 code; ARMv8 crypto instructions), and constant-time comparison. SigV4
//! hashes every request body, on both sides of the wire, so this is where `send` and the emulator spend their
//! CPU on CPUs without the SHA extensions: the portable Rust fallback is several times slower there.

/// Lowercase hex SHA-256 of `bytes`, as SigV4 writes it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha256(bytes))
}

/// The SHA-256 digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest.as_ref().try_into().expect("SHA-256 digests are 32 bytes")
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths (for signatures and digests).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        // The same as the portable implementation the SDK's signer uses, for every length around block edges.
        use sha2::Digest;
        for n in [1usize, 55, 56, 63, 64, 65, 1000, 100_000] {
            let data: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
            assert_eq!(sha256_hex(&data), hex::encode(sha2::Sha256::digest(&data)), "{n}");
        }
    }

    #[test]
    fn comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
