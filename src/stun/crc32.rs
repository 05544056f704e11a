//! CRC-32 (ISO-HDLC: reflected polynomial 0xEDB88320, initial value and
//! final XOR 0xFFFFFFFF), the checksum that STUN's FINGERPRINT attribute
//! uses (RFC 8489 §14.7, which refers to ITU-V.42 / ISO 3309).
//!
//! Table-driven, one byte at a time; the table is built at compile time.

/// The reflected CRC-32 polynomial.
const POLY: u32 = 0xedb8_8320;

/// Remainders of every byte value.
const TABLE: [u32; 256] = table();

const fn table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 { POLY ^ (c >> 1) } else { c >> 1 };
            bit += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
}

/// A running CRC-32 over several slices.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Crc32(u32);

impl Crc32 {
    pub(crate) fn new() -> Self {
        Crc32(0xffff_ffff)
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        let mut c = self.0;
        for &b in data {
            c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    pub(crate) fn finish(self) -> u32 {
        self.0 ^ 0xffff_ffff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc(data: &[u8]) -> u32 {
        let mut c = Crc32::new();
        c.update(data);
        c.finish()
    }

    #[test]
    fn check_values() {
        // The catalogue check value of CRC-32/ISO-HDLC.
        assert_eq!(crc(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc(b""), 0);
        let mut split = Crc32::new();
        split.update(b"1234");
        split.update(b"56789");
        assert_eq!(split.finish(), 0xcbf4_3926);
    }
}
